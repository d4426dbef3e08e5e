"""HF transformers' own classes on the tiny family fixtures (test/fixtures/families), on the GPU and the CPU,
against our converted graphs' outputs that deviceBench.js wrote to WORK/families/NAME.json (onnxruntime-node on
the CPU and on WebGPU) and against the fixtures' expected.json (transformers 4.57.6 on a CPU). Prints JSON lines;
the figures go into test/fixtures/families/README.md."""
import json, os, sys
import numpy as np
import torch
import transformers
from transformers import BeitForImageClassification, Data2VecVisionForImageClassification, ViTForImageClassification

work, fixtures = sys.argv[1], sys.argv[2]
CLASSES = {"beit": BeitForImageClassification, "data2vec-vision": Data2VecVisionForImageClassification, "vit": ViTForImageClassification}


def emit(row):
    print(json.dumps(row), flush=True)


def forward(model, x):
    with torch.inference_mode():
        logits = model(pixel_values=x).logits
        if isinstance(model, ViTForImageClassification):
            pooled = model.vit(pixel_values=x).last_hidden_state[:, 0]  # the classifier reads the CLS token after vit.layernorm
        else:
            base = model.beit if hasattr(model, "beit") else model.data2vec_vision
            pooled = base(pixel_values=x).pooler_output
    return logits.float().cpu().numpy().ravel(), pooled.float().cpu().numpy().ravel()


def max_diff(a, b):
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


for name in sorted(os.listdir(fixtures)):
    folder = os.path.join(fixtures, name)
    ours_file = os.path.join(work, "families", f"{name}.json")
    if not os.path.exists(os.path.join(folder, "config.json")):
        continue
    try:
        config = json.load(open(os.path.join(folder, "config.json")))
        expected = json.load(open(os.path.join(folder, "expected.json")))["raw_input_check"]
        ours = json.load(open(ours_file)) if os.path.exists(ours_file) else {}
        x = torch.from_numpy(np.fromfile(os.path.join(folder, "pixel_values.bin"), dtype=np.float32).reshape(expected["shape"]))
        cls = CLASSES[config["model_type"]]
        row = {"label": "HF class vs ours", "family": name, "class": cls.__name__, "transformers": transformers.__version__, "torch": torch.__version__}
        for device in ["cuda", "cpu"]:
            model = cls.from_pretrained(folder, attn_implementation="eager").to(device).eval()
            logits, pooled = forward(model, x.to(device))
            row[device] = {
                "vsFixtureLogits": max_diff(logits, expected["logits"]),
                "vsFixturePooled": max_diff(pooled, expected["pooled_output"]),
                **{f"vsOurs_{p}_logits": max_diff(logits, o["logits"]) for p, o in ours.items() if isinstance(o, dict)},
                **{f"vsOurs_{p}_pooled": max_diff(pooled, o["pooled"]) for p, o in ours.items() if isinstance(o, dict)},
            }
        emit(row)
    except Exception as err:  # noqa: BLE001
        emit({"label": "HF class vs ours", "family": name, "error": repr(err)[:400]})
