"""PyTorch peer for the GPU check: timm's BEiT-base loaded with the same random weights
(HF names mapped to timm's), timed on the same GPU as onnxruntime-node. Prints JSON lines."""
import json, sys, time
import torch
from safetensors.torch import load_file

hf_dir = sys.argv[1]
sd = load_file(f"{hf_dir}/model.safetensors")
import timm  # noqa: E402

model = timm.create_model("beit_base_patch16_224", pretrained=False, num_classes=21841)
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
print(json.dumps({"label": "timm load", "missing": [k for k in missing if "relative_position_index" not in k and "k_bias" not in k], "unexpected": unexpected}))
model = model.cuda().eval()
one = torch.sin(torch.arange(3 * 224 * 224, dtype=torch.float32) * 0.001).reshape(1, 3, 224, 224).cuda()


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


for label, dtype in [("torch fp32", torch.float32), ("torch fp16", torch.float16)]:
    m = model.to(dtype)  # fp32 first: .to() converts the module in place
    x1 = one.to(dtype)
    x64 = one.repeat(64, 1, 1, 1).to(dtype)
    with torch.inference_mode():
        logits = m(x1).float()[0, :5].tolist()
    b1, b64 = timed(m, x1, 20), timed(m, x64, 5)
    print(json.dumps({"label": label, "batch1Ms": b1, "batch64Ms": b64, "imagesPerSecond": 64000 / b64, "logitsFirst5": logits, "gpu": torch.cuda.get_device_name(0)}))
