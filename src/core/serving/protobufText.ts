/**
 * Protocol Buffers text format, the form Triton reads config.pbtxt in. No maintained JavaScript library prints it
 * (protobufjs and protobuf-es read and write the binary and JSON forms only), so this writes the small subset a
 * model configuration needs: scalar, string, enum and message fields, repeated ones among them. Map fields are
 * written as their repeated `{ key value }` entries, which is what a map is in text format.
 * test/unit/triton-export.test.ts parses the output with protobuf's own text-format parser against Triton's
 * model_config.proto.
 */

/** An enum value: written bare (`KIND_GPU`), where a string would be quoted. */
export class ProtoEnum {
  constructor(readonly name: string) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not an enum identifier: ${JSON.stringify(name)}`);
  }
}

export type ProtoScalar = string | number | bigint | boolean | ProtoEnum;
export type ProtoField = ProtoScalar | ProtoMessage | readonly ProtoScalar[] | readonly ProtoMessage[] | undefined;
export interface ProtoMessage {
  readonly [field: string]: ProtoField;
}

const isMessage = (v: unknown): v is ProtoMessage => typeof v === 'object' && v !== null && !(v instanceof ProtoEnum) && !Array.isArray(v);

/** A message as text format, one field a line; undefined fields and empty repeated fields are left out (proto3: absent). */
export function toTextFormat(message: ProtoMessage): string {
  const lines: string[] = [];
  writeMessage(message, '', lines);
  return lines.join('\n') + '\n';
}

function writeMessage(message: ProtoMessage, indent: string, lines: string[]): void {
  for (const [field, value] of Object.entries(message)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(field)) throw new Error(`not a field name: ${JSON.stringify(field)}`);
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      if (value.length === 0) continue;
      if (value.every(isMessage)) for (const m of value as ProtoMessage[]) writeBlock(field, m, indent, lines);
      else if (value.some(isMessage)) throw new Error(`${field}: a repeated field holds messages or scalars, not both`);
      else lines.push(`${indent}${field}: [ ${(value as ProtoScalar[]).map(scalar).join(', ')} ]`);
    } else if (isMessage(value)) writeBlock(field, value, indent, lines);
    else lines.push(`${indent}${field}: ${scalar(value as ProtoScalar)}`);
  }
}

function writeBlock(field: string, message: ProtoMessage, indent: string, lines: string[]): void {
  lines.push(`${indent}${field} {`);
  writeMessage(message, indent + '  ', lines);
  lines.push(`${indent}}`);
}

function scalar(value: ProtoScalar): string {
  if (value instanceof ProtoEnum) return value.name;
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (!Number.isSafeInteger(value)) throw new Error(`only integers are written, got ${value}`);
  return String(value);
}

/**
 * A string literal as protobuf's own printer (C++ CEscape) writes one: printable ASCII as is, quote and backslash
 * escaped, every other byte of the UTF-8 encoding as a three-digit octal escape, which every text-format parser reads.
 */
export function quote(text: string): string {
  let out = '"';
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x5c) out += '\\\\';
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return out + '"';
}
