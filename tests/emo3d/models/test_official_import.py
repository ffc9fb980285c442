"""``emo3d import official``: tiny checkpoints written in the official key layout (modules rebuilt
here from the official notebooks' architecture) → our model folders; outputs identical."""
import io
import json
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from emo3d.errors import ModelFileError
from emo3d.manifest import ModelManifest
from emo3d.models import load_head
from emo3d.models.official import convert_state, import_checkpoint, main
from support.tiny_clip import make_tiny_clip_folder

D = 16      # tiny CLIP projection width (the official checkpoints: 512)


class OfficialClipMLP(nn.Module):
    """The official CLIP baseline: network = Linear, ReLU, Linear, ReLU, Linear, Sigmoid."""

    def __init__(self, d=D):
        super().__init__()
        self.network = nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                     nn.Linear(128, 51), nn.Sigmoid())

    def forward(self, x):
        return self.network(x)


class OfficialVAE(nn.Module):
    """The official VAE-CLIP: encoder / fc_mu / fc_logvar / decoder (Linear, ReLU, Dropout, Linear,
    Sigmoid); inference = decoder(text embedding)."""

    def __init__(self, d=D, dropout=0.3):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(51, 256), nn.ReLU())
        self.fc_mu = nn.Linear(256, d)
        self.fc_logvar = nn.Linear(256, d)
        self.decoder = nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, 51),
                                     nn.Sigmoid())

    def generate(self, text_embedding):
        return self.decoder(text_embedding)


def _as_saved_on_cuda(path):
    """Rewrite a CPU checkpoint's storage locations to 'cuda:0', as a state dict saved in a CUDA
    session is (pickle protocol 2: no frame lengths to fix)."""
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    old = b"X\x03\x00\x00\x00cpu"
    new = b"X\x06\x00\x00\x00cuda:0"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for info, data in items:
            if info.filename.endswith("data.pkl"):
                assert old in data
                data = data.replace(old, new)
            z.writestr(info, data)
    path.write_bytes(buf.getvalue())


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("official")
    torch.manual_seed(0)
    mlp, vae = OfficialClipMLP().eval(), OfficialVAE().eval()
    torch.save(mlp.state_dict(), tmp / "CLIP_Baseline.pth")
    torch.save(vae.state_dict(), tmp / "VAE_CLIP.pt")
    _as_saved_on_cuda(tmp / "CLIP_Baseline.pth")      # both official files were saved on CUDA
    _as_saved_on_cuda(tmp / "VAE_CLIP.pt")
    clip = make_tiny_clip_folder(tmp / "tiny_clip", projection_dim=D)
    return tmp, mlp, vae, clip


def test_checkpoints_saved_on_cuda_need_cpu_mapping(official):
    tmp, *_ = official
    for name in ("CLIP_Baseline.pth", "VAE_CLIP.pt"):
        if not torch.cuda.is_available():
            with pytest.raises(RuntimeError, match="CUDA"):
                torch.load(tmp / name, weights_only=True)
        state = torch.load(tmp / name, weights_only=True, map_location="cpu")
        assert all(v.device.type == "cpu" for v in state.values())


def test_import_cli_outputs_identical(official, tmp_path, capsys):
    tmp, mlp, vae, clip = official
    out = tmp_path / "imported"
    assert main(["official", str(tmp / "CLIP_Baseline.pth"), str(tmp / "VAE_CLIP.pt"), "--out", str(out),
                 "--backbone", str(clip)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in report] == ["clip_mlp", "vae_clip"]
    assert report[0]["renamed"] == 6 and report[1]["renamed"] == 0
    x = torch.randn(257, D) * 4.0
    heads = {}
    for kind, ref in (("clip_mlp", mlp(x)), ("vae_clip", vae.generate(x))):
        head, manifest = load_head(out / kind)
        heads[kind] = head
        assert manifest.kind == kind and manifest.backbone["normalize"] is False
        assert manifest.extra["official"]["file"] in ("CLIP_Baseline.pth", "VAE_CLIP.pt")
        with torch.no_grad():
            got = head(x)["blendshapes"]
        assert torch.equal(got, ref.detach()), kind          # difference exactly 0
        import onnxruntime as ort
        sess = ort.InferenceSession(str(out / kind / "head.onnx"), providers=["CPUExecutionProvider"])
        onnx_out = sess.run(None, {"sentence_embedding": x.numpy()})[0]
        assert np.abs(onnx_out - ref.detach().numpy()).max() < 1e-6, kind
    names = ModelManifest.load(out / "clip_mlp").extra["official"]["renamed"]
    assert names["network.4.bias"] == "mlp.4.bias"


def test_imported_folder_exports_like_any_model(official, tmp_path, capsys):
    from export.cli import main as export_main
    tmp, mlp, vae, clip = official
    folder = import_checkpoint(tmp / "CLIP_Baseline.pth", tmp_path / "clip_mlp", backbone=str(clip)).out
    onnx_dir = tmp_path / "onnx"
    assert export_main([str(folder), "--out", str(onnx_dir)]) == 0
    assert "parity vs torch" in capsys.readouterr().out
    man = ModelManifest.load(onnx_dir)
    assert man.onnx["parity"]["ok"] and man.files["onnx"] == "model.onnx"
    # the fused graph (tokenizer ids -> CLIP text tower -> official MLP) against the official module
    from transformers import AutoTokenizer, CLIPModel
    tok = AutoTokenizer.from_pretrained(clip)
    enc = tok(["a very happy face", "sad frown"], padding=True, return_tensors="np")
    import onnxruntime as ort
    sess = ort.InferenceSession(str(onnx_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()}
    got = sess.run(["blendshapes"], feeds)[0]
    with torch.no_grad():
        feats = CLIPModel.from_pretrained(clip).get_text_features(
            input_ids=torch.as_tensor(enc["input_ids"]), attention_mask=torch.as_tensor(enc["attention_mask"]))
        feats = feats if isinstance(feats, torch.Tensor) else feats.pooler_output
        ref = mlp(feats).numpy()
    assert np.abs(got - ref).max() < 1e-4


def test_bad_checkpoints_are_refused(official, tmp_path, capsys):
    tmp, mlp, *_ = official
    state = mlp.state_dict()
    del state["network.4.bias"]
    with pytest.raises(ModelFileError, match=r"missing keys \['mlp.4.bias'\]"):
        convert_state(state)
    bad = dict(mlp.state_dict())
    bad["network.2.weight"] = torch.zeros(64, 256)
    with pytest.raises(ModelFileError, match="wrong shapes: mlp.2.weight"):
        convert_state(bad)
    with pytest.raises(ModelFileError, match="unrecognised checkpoint layout"):
        convert_state({"foo.weight": torch.zeros(2)})
    torch.save(mlp, tmp_path / "module.pth")                # a pickled module, not a state dict
    with pytest.raises(ModelFileError, match="not a readable PyTorch state dict"):
        import_checkpoint(tmp_path / "module.pth", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert main(["official", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["other", "x"]) == 2
    assert main(["official", str(tmp / "CLIP_Baseline.pth"), str(tmp / "CLIP_Baseline.pth"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "two checkpoints of kind clip_mlp" in capsys.readouterr().err
