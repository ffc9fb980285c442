"""Draws docs/architecture.png: the layers (left) and the path of one prompt (right).

    python docs/architecture_diagram.py        # rewrites docs/architecture.png
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent / "architecture.png"

# (layer, what lives there), top = highest; a layer imports only from the layers below it.
LAYERS = [
    ("emo3d.cli", "the `emo3d` command: run, render, data, train, export, eval, calibrate, webcam ..."),
    ("eval", "the Emo3D metric: kernels, CLIP / FER / round-trip judges, reports"),
    ("runtime", "text engine (onnxruntime), 60 Hz avatar loop, preview, webcam tracker,\n"
                "streams: control server, VMC, Live Link, browser viewer  (never imports torch)"),
    ("export", "torch -> ONNX with parity checks, int8, CLIP towers, the default model's builder"),
    ("emo3d.models", "the paper's baselines, training, the shipped default head"),
    ("emo3d.data", "the Emo3D release reader, the offline builder, the FACS prior"),
    ("emo3d.avatar", "the face: default rig, glTF rigs, authoring, calibration, MediaPipe scorer"),
    ("native", "C++ core (pybind11): sparse deformation, the rasterizer; numpy references"),
    ("core (emo3d.*)", "schema (names, orders) · names (aliases) · weights (normaliser) · pose (convention)\n"
                       "options (range checks) · facs (prototypes) · errors · io · manifest · assets · parallel"),
]

FLOW = [
    ("text", "\"furious scowl\""),
    ("tokens", "tokenizers: tokenizer.json\n-> input_ids, attention_mask"),
    ("ONNX", "runtime.Engine: model.onnx\n(encoder + head, one graph)"),
    ("52 scores", "blendshapes [51] -> [52]\nMediaPipe order (emo3d.schema)"),
    ("avatar loop", "runtime.loop.AvatarLoop: ease, intensity,\nlive layer, idle; one Frame per 1/60 s"),
]
SINKS = ["renderer\n(native, preview / PNG)", "control server\n(TCP, browser)", "VMC\n(Unity, VSeeFace)",
         "Live Link\n(Unreal)"]

LAYER_COLOURS = ["#d9d9d9", "#c6dbef", "#9ecae1", "#c7e9c0", "#a1d99b", "#fdd0a2", "#fdae6b", "#dadaeb",
                 "#fff2ae"]


def box(ax, x, y, w, h, title, body, colour, title_size=10.5, body_size=8.2):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.006,rounding_size=0.012",
                                fc=colour, ec="#444444", lw=0.9))
    ax.text(x + 0.012, y + h - 0.012, title, ha="left", va="top", fontsize=title_size, weight="bold")
    ax.text(x + 0.012, y + h - 0.040, body, ha="left", va="top", fontsize=body_size, linespacing=1.25)


def arrow(ax, a, b, colour="#333333"):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, lw=1.2, color=colour))


def main() -> None:
    fig = plt.figure(figsize=(15, 9.2), dpi=110)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.text(0.02, 0.975, "Layers: each imports only from the layers below it (.importlinter checks it)",
            fontsize=12, weight="bold", va="top")
    n, top, h, gap = len(LAYERS), 0.93, 0.085, 0.012
    for i, ((name, body), colour) in enumerate(zip(LAYERS, LAYER_COLOURS)):
        y = top - (i + 1) * h - i * gap
        box(ax, 0.02, y, 0.50, h, name, body, colour)
        if i < n - 1:
            arrow(ax, (0.50, y + 0.005), (0.50, y - gap - 0.002), "#777777")
    ax.text(0.545, 0.975, "One prompt, end to end", fontsize=12, weight="bold", va="top")
    fh, fgap = 0.085, 0.03
    for i, (title, body) in enumerate(FLOW):
        y = top - (i + 1) * fh - i * fgap
        box(ax, 0.56, y, 0.25, fh, title, body, "#f7f7f7")
        if i < len(FLOW) - 1:
            arrow(ax, (0.685, y), (0.685, y - fgap))
    last_y = top - len(FLOW) * fh - (len(FLOW) - 1) * fgap
    sw, sgap = 0.095, 0.012
    for j, sink in enumerate(SINKS):
        x = 0.545 + j * (sw + sgap)
        box(ax, x, last_y - 0.17, sw, 0.075, sink.split("\n")[0], sink.split("\n")[1], "#e5f5e0",
            title_size=9, body_size=7.8)
        arrow(ax, (0.685, last_y), (x + sw / 2, last_y - 0.095))
    ax.text(0.545, last_y - 0.20, "Frame.weights: [52] in [0, 1] (emo3d.weights);  Frame.head / eyes: radians,\n"
            "signs of emo3d.pose (+yaw toward the subject's left, +pitch looks down)", fontsize=8.6, va="top")
    fig.savefig(OUT, facecolor="white")
    plt.close(fig)


if __name__ == "__main__":
    main()
