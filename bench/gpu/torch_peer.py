"""PyTorch peer for the GPU check (bench/gpu/run-device.sh).

timm's BEiT-base loaded with the random weights deviceBench.js made (HF names mapped to timm's), timed on the
same GPU as onnxruntime-node and fed the same images (WORK/inputs.bin), its top-1 compared with our CPU fp32
logits (WORK/cpu-logits.bin). Then HF transformers' own BeitForImageClassification on the same weights and
images, as an independent cross-check of our fp32 logits at base size. Prints JSON lines."""
import json, os, sys, time
import numpy as np
import torch
from safetensors.torch import load_file

work = sys.argv[1]
hf_dir = os.path.join(work, "hf-base")
LABELS = 21841
BATCH = int(os.environ.get("DEVBENCH_BATCH", "64"))
x_all = torch.from_numpy(np.fromfile(os.path.join(work, "inputs.bin"), dtype=np.float32).reshape(-1, 3, 224, 224))
cpu = torch.from_numpy(np.fromfile(os.path.join(work, "cpu-logits.bin"), dtype=np.float32).reshape(-1, LABELS))
n_images = x_all.shape[0]


def emit(row):
    print(json.dumps(row), flush=True)


def compare(logits, ref):
    logits, ref = logits.float().cpu(), ref[: logits.shape[0]]
    return {"maxLogitDiff": (logits - ref).abs().max().item(), "top1Agreement": (logits.argmax(1) == ref.argmax(1)).float().mean().item()}


def run_all(m, dtype):
    outs = []
    with torch.inference_mode():
        for i in range(0, n_images, BATCH):
            outs.append(m(x_all[i : i + BATCH].cuda().to(dtype)).float().cpu())
    return torch.cat(outs)


def timed(m, x, reps):
    with torch.inference_mode():
        for _ in range(3):
            m(x)
        torch.cuda.synchronize()
        ts = []
        for _ in range(reps):
            t = time.perf_counter(); m(x); torch.cuda.synchronize(); ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    return ts[len(ts) // 2]


sd = load_file(f"{hf_dir}/model.safetensors")
import timm  # noqa: E402

model = timm.create_model("beit_base_patch16_224", pretrained=False, num_classes=LABELS)
mapped = {
    "cls_token": sd["beit.embeddings.cls_token"],
    "patch_embed.proj.weight": sd["beit.embeddings.patch_embeddings.projection.weight"],
    "patch_embed.proj.bias": sd["beit.embeddings.patch_embeddings.projection.bias"],
    "fc_norm.weight": sd["beit.pooler.layernorm.weight"],
    "fc_norm.bias": sd["beit.pooler.layernorm.bias"],
    "head.weight": sd["classifier.weight"],
    "head.bias": sd["classifier.bias"],
}
for i in range(12):
    p, a = f"beit.encoder.layer.{i}", f"beit.encoder.layer.{i}.attention.attention"
    b = f"blocks.{i}"
    mapped.update({
        f"{b}.norm1.weight": sd[f"{p}.layernorm_before.weight"], f"{b}.norm1.bias": sd[f"{p}.layernorm_before.bias"],
        f"{b}.attn.qkv.weight": torch.cat([sd[f"{a}.query.weight"], sd[f"{a}.key.weight"], sd[f"{a}.value.weight"]]),
        f"{b}.attn.q_bias": sd[f"{a}.query.bias"], f"{b}.attn.v_bias": sd[f"{a}.value.bias"],
        f"{b}.attn.relative_position_bias_table": sd[f"{a}.relative_position_bias.relative_position_bias_table"],
        f"{b}.attn.proj.weight": sd[f"{p}.attention.output.dense.weight"], f"{b}.attn.proj.bias": sd[f"{p}.attention.output.dense.bias"],
        f"{b}.gamma_1": sd[f"{p}.lambda_1"], f"{b}.gamma_2": sd[f"{p}.lambda_2"],
        f"{b}.norm2.weight": sd[f"{p}.layernorm_after.weight"], f"{b}.norm2.bias": sd[f"{p}.layernorm_after.bias"],
        f"{b}.mlp.fc1.weight": sd[f"{p}.intermediate.dense.weight"], f"{b}.mlp.fc1.bias": sd[f"{p}.intermediate.dense.bias"],
        f"{b}.mlp.fc2.weight": sd[f"{p}.output.dense.weight"], f"{b}.mlp.fc2.bias": sd[f"{p}.output.dense.bias"],
    })
missing, unexpected = model.load_state_dict(mapped, strict=False)
# HF uses LayerNorm eps 1e-12; timm defaults to 1e-6.
for m in model.modules():
    if isinstance(m, torch.nn.LayerNorm):
        m.eps = 1e-12
emit({"label": "timm load", "timm": timm.__version__, "torch": torch.__version__, "missing": [k for k in missing if "relative_position_index" not in k and "k_bias" not in k], "unexpected": unexpected})
model = model.cuda().eval()

for label, dtype in [("torch fp32", torch.float32), ("torch fp16", torch.float16)]:
    m = model.to(dtype)  # fp32 first: .to() converts the module in place
    x1 = x_all[:1].cuda().to(dtype)
    xb = x_all[:BATCH].cuda().to(dtype)
    b1, bN = timed(m, x1, 20), timed(m, xb, 10)
    logits = run_all(m, dtype)
    row = {"label": label, "batch1Ms": b1, "batch": BATCH, "batchMs": bN, "imagesPerSecond": BATCH * 1000 / bN, "logitsFirst5": logits[0, :5].tolist(), "vsOursCpuFp32": compare(logits, cpu), "gpu": torch.cuda.get_device_name(0)}
    if n_images >= 256:
        row["batch256Ms"] = timed(m, x_all[:256].cuda().to(dtype), 5)
    emit(row)
del model
torch.cuda.empty_cache()

try:
    import transformers
    from transformers import BeitForImageClassification

    hf_model = BeitForImageClassification.from_pretrained(hf_dir, attn_implementation="eager").cuda().eval()
    logits = run_all(lambda x: hf_model(pixel_values=x).logits, torch.float32)
    emit({"label": "HF BeitForImageClassification fp32 (GPU) vs our CPU fp32, random BEiT-base", "transformers": transformers.__version__, "vsOursCpuFp32": compare(logits, cpu), "images": n_images})
except Exception as err:  # noqa: BLE001
    emit({"label": "HF BeitForImageClassification", "error": repr(err)[:400]})
