import type { onnx } from 'onnx-proto';

/**
 * A name allocator for passes that add nodes and tensors to an existing graph: it returns the hint, or the
 * hint with a numeric suffix, never a name the graph (inputs, outputs, value infos, initializers, node
 * outputs and node names) already uses or an earlier call returned.
 */
export function freshNames(graph: onnx.IGraphProto): (hint: string) => string {
  const names = new Set<string>();
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) names.add(v.name ?? '');
  for (const t of graph.initializer ?? []) names.add(t.name ?? '');
  for (const n of graph.node ?? []) for (const o of [...(n.output ?? []), n.name ?? '']) names.add(o);
  return (hint) => {
    let name = hint;
    for (let i = 1; names.has(name); i++) name = `${hint}_${i}`;
    names.add(name);
    return name;
  };
}
