"""The one blendshape NAME MAP of emo3d: any vendor's shape name -> canonical ARKit name(s).

Every place that reads a shape name from outside (the glTF/VRM loader, the control server, VMC,
Live Link, the Unity client through its generated table ``clients/unity/Emo3DNames.g.cs``) resolves
it here, so they agree. Accepted families (any case, any of ``_ - . space`` or camelCase as
separators):

* ARKit / MediaPipe / Live Link / VMC perfect-sync / Audio2Face's ARKit set: ``eyeBlinkLeft``,
  ``EyeBlinkLeft``, ``_neutral``.
* FaceCap / three.js ``facecap.glb``: ``eyeBlink_L``, ``browInnerUp``, ``mouthSmile_R``.
* Character Creator 4 / iClone: ``Eye_Blink_L``, ``Brow_Drop_L``, ``Brow_Raise_Inner_L``,
  ``Mouth_Up_Upper_L``, ``Eye_L_Look_L``; CC3's ``A14_Eye_Blink_Left``.
* MetaHuman face curves: ``CTRL_expressions_browDownL``, ``..._mouthCornerPullR``, ``..._eyeLookLeftL``,
  ``..._mouthLipsPurseUL``.
* VRoid: ``Fcl_EYE_Close_L``.
* Blender: ``eyeBlink.L``, ``jawOpen.001``, exporter prefixes ``blendShape1.JawOpen``, ``Face:jawOpen``.

Sides: ``L``/``R``/``Left``/``Right`` are the SUBJECT's left/right (ARKit's convention). A one-sided
source of an unsided ARKit shape (``browInnerUp_L``, ``Cheek_Puff_L``, CC's four ``Mouth_Funnel_*``
quarters) resolves with ``part`` set: its deltas are summed into the unsided shape. An unsided source
of a sided pair (``mouthSmile``, ``Eye_Blink``) resolves to both sides (``split``): the loader splits
its deltas by the sign of x, the control server sets both.

VRM expression presets (1.0 names and 0.x names) are a separate vocabulary: :func:`vrm_preset`.

This module imports only the standard library and :mod:`emo3d.schema`.
"""
from __future__ import annotations

import difflib
import functools
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from emo3d import schema

__all__ = ["NameMatch", "UnknownNameWarning", "resolve", "canonical_name", "close_matches",
           "warn_unknown", "weights_from_mapping", "vrm_preset", "VRM_PRESETS", "csharp_source"]

#: ARKit shapes in Apple order plus MediaPipe's ``_neutral``: every name :func:`resolve` may return.
CANONICAL: Tuple[str, ...] = schema.ARKIT_NAMES + (schema.NEUTRAL,)
_LOW: Dict[str, str] = {n.lower().replace("_", ""): n for n in CANONICAL}

SIDES: Dict[str, str] = {"l": "Left", "left": "Left", "r": "Right", "right": "Right"}

# Tokens dropped wherever they lead a name (exporter / vendor prefixes).
FILLER: Tuple[str, ...] = ("ctrl", "expressions", "expression", "fcl", "arkit", "bs", "blendshape",
                           "blendshapes", "shapes", "shape", "morph", "facs")

# Vendor stems (tokens joined, lower case, side removed) -> ARKit stem. ARKit stems map to themselves
# (added below); ``jaw``/``mouth`` + side give jawLeft/mouthRight (a direction, not a side).
STEM_ALIASES: Dict[str, str] = {
    # Character Creator 4 / iClone
    "browdrop": "browDown", "browraiseinner": "browInnerUp", "browraiseouter": "browOuterUp",
    "cheekraise": "cheekSquint", "mouthupupper": "mouthUpperUp", "mouthdownlower": "mouthLowerDown",
    "mouthrollinupper": "mouthRollUpper", "mouthrollinlower": "mouthRollLower",
    "mouthfunnelup": "mouthFunnel", "mouthfunneldown": "mouthFunnel",
    "mouthpuckerup": "mouthPucker", "mouthpuckerdown": "mouthPucker",
    "mouthopen": "jawOpen", "eyeclose": "eyeBlink",
    # MetaHuman CTRL_expressions_* curves (U/D quarters become ...upper / ...lower)
    "browraisein": "browInnerUp", "eyewiden": "eyeWide", "eyesquintinner": "eyeSquint",
    "eyecheekraise": "cheekSquint", "nosewrinkle": "noseSneer", "jawfwd": "jawForward",
    "mouthcornerpull": "mouthSmile", "mouthcornerdepress": "mouthFrown",
    "mouthlowerlipdepress": "mouthLowerDown", "mouthupperlipraise": "mouthUpperUp",
    "mouthcheekblow": "cheekPuff", "mouthlipspurseupper": "mouthPucker", "mouthlipspurselower": "mouthPucker",
    "mouthfunnelupper": "mouthFunnel", "mouthfunnellower": "mouthFunnel",
    "mouthlipstogetherupper": "mouthClose", "mouthlipstogetherlower": "mouthClose",
    "mouthpressupper": "mouthPress", "mouthpresslower": "mouthPress",
    "mouthupperliprollin": "mouthRollUpper", "mouthlowerliprollin": "mouthRollLower",
    "jawchinraiselower": "mouthShrugLower", "jawchinraiseupper": "mouthShrugUpper",
}
for _n in schema.ARKIT_NAMES:
    _stem = re.sub(r"(Left|Right)$", "", _n)
    STEM_ALIASES.setdefault(_stem.lower(), _stem)

_EYE_DIR = {"up": "Up", "down": "Down", "in": "In", "out": "Out"}

# --- VRM expression presets (1.0 names; 0.x names map onto them) ------------------------------
VRM_PRESETS: Tuple[str, ...] = (
    "happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh",
    "blink", "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral",
)
_VRM_LOW: Dict[str, str] = {p.lower(): p for p in VRM_PRESETS}
_VRM_LOW.update({"joy": "happy", "sorrow": "sad", "fun": "relaxed", "a": "aa", "i": "ih", "u": "ou",
                 "e": "ee", "o": "oh", "blinkl": "blinkLeft", "blinkr": "blinkRight"})


@dataclass(frozen=True)
class NameMatch:
    """A resolved source name. ``targets``: one ARKit name, or (xLeft, xRight) when ``split``
    (an unsided source of a sided pair); ``part``: 'Left'/'Right' when the source is one side (or a
    quarter) of an unsided ARKit shape, to be summed with its other parts."""

    targets: Tuple[str, ...]
    split: bool = False
    part: Optional[str] = None

    @property
    def name(self) -> str:
        """The single target, or the unsided stem of a split pair (``mouthSmile``)."""
        return self.targets[0] if not self.split else self.targets[0][:-4]


class UnknownNameWarning(UserWarning):
    """Some shape names matched nothing in the name map; the message lists close matches."""


_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def tokens(name: str) -> List[str]:
    """Split a vendor name into lower-case tokens, dropping exporter prefixes, Blender's ``.001``
    and leading filler words: ``CTRL_expressions_browDownL`` -> ['brow', 'down', 'l']."""
    parts = [p for p in re.split(r"[.:|]", str(name).strip()) if p != ""]
    while len(parts) > 1 and parts[-1].isdigit():
        parts.pop()                                         # Blender duplicate suffix .001
    if len(parts) > 1 and parts[-1].lower() in SIDES:
        core = parts[-2] + "_" + parts[-1]                  # eyeBlink.L
    else:
        core = parts[-1] if parts else ""
    core = re.sub(r"^[Aa]\d\d_", "", core)                  # CC3 "A14_Eye_Blink_Left"
    toks = [t.lower() for chunk in re.split(r"[^A-Za-z0-9]+", core) for t in _TOKEN.findall(chunk)]
    while toks and toks[0] in FILLER:
        toks.pop(0)
    while len(toks) > 1 and toks[-1].isdigit():
        toks.pop()
    return toks


def _eye_look(toks: List[str]) -> Optional[NameMatch]:
    """eye + look + a side and a direction in any vendor order: eyeLookInLeft, eyeLookIn_L,
    Eye_L_Look_Up, Eye_L_Look_R (CC: a side as direction), eyeLookLeftL (MetaHuman)."""
    if len(toks) != 4 or toks[0] != "eye" or "look" not in toks:
        return None
    rest = [t for t in toks[1:] if t != "look"]
    if toks[1] in SIDES and toks[2] == "look":
        side, d = toks[1], toks[3]
    else:
        d, side = rest
    if side not in SIDES:
        return None
    s = SIDES[side]
    if d in SIDES:
        d = "out" if SIDES[d] == s else "in"   # the subject's left eye looking left looks out
    if d not in _EYE_DIR:
        return None
    return NameMatch((f"eyeLook{_EYE_DIR[d]}{s}",))


def resolve(name: str) -> Optional[NameMatch]:
    """A vendor shape name -> :class:`NameMatch`, or None when it matches nothing."""
    return _resolve(str(name))


@functools.lru_cache(maxsize=4096)
def _resolve(name: str) -> Optional[NameMatch]:
    """:func:`resolve` of a name's text, cached (a pure function of it; ~9 us of regular expressions per
    name, paid for every name of every frame rendered or streamed from a {name: value} mapping)."""
    toks = tokens(name)
    if not toks:
        return None
    key = "".join(toks)
    if key == "neutral" and str(name).strip().startswith("_"):
        return NameMatch((schema.NEUTRAL,))
    if key in _LOW and key != "neutral":
        return NameMatch((_LOW[key],))
    eye = _eye_look(toks)
    if eye is not None:
        return eye
    side = None
    if toks[-1] in SIDES:
        side, toks = SIDES[toks[-1]], toks[:-1]
    elif re.fullmatch(r"[ud][lr]", toks[-1]):             # MetaHuman quarters: UL, DR ...
        side = SIDES[toks[-1][1]]
        toks = toks[:-1] + ["upper" if toks[-1][0] == "u" else "lower"]
    elif len(toks) > 2 and toks[1] in ("l", "r"):            # Eye_L_Blink
        side, toks = SIDES[toks[1]], toks[:1] + toks[2:]
    stem = STEM_ALIASES.get("".join(toks))
    if stem is None:
        return None
    if side is not None:
        if stem + side in schema.ARKIT_INDEX:
            return NameMatch((stem + side,))
        if stem in schema.ARKIT_INDEX:
            return NameMatch((stem,), part=side)
        return None
    if stem in schema.ARKIT_INDEX:
        return NameMatch((stem,))
    if stem + "Left" in schema.ARKIT_INDEX and stem + "Right" in schema.ARKIT_INDEX:
        return NameMatch((stem + "Left", stem + "Right"), split=True)
    return None


def close_matches(name: str, n: int = 3) -> List[str]:
    """Up to ``n`` canonical ARKit names that look like ``name``."""
    key = "".join(tokens(name)) or str(name).lower()
    return [_LOW[k] for k in difflib.get_close_matches(key, list(_LOW), n=n, cutoff=0.6)]


def canonical_name(name: str) -> str:
    """One ARKit name for ``name`` (a split pair gives its unsided stem's Left and Right via
    :func:`resolve`; here it is refused). Raises ``KeyError`` listing close matches."""
    m = resolve(name)
    if m is None or m.split:
        close = close_matches(name)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        why = " (names both sides; use ...Left/...Right)" if m is not None else ""
        raise KeyError(f"unknown blendshape name {name!r}{why}{hint} (accepted: the 52 ARKit names in any "
                       f"case or separator style, with _L/_R/.L/.R sides; CC4, MetaHuman, FaceCap and "
                       f"Blender spellings)")
    return m.targets[0]


def warn_unknown(names: Iterable[str], where: str, *, stacklevel: int = 2) -> None:
    """One :class:`UnknownNameWarning` for all ``names`` (if any), each with its close matches."""
    names = list(dict.fromkeys(str(n) for n in names))
    if not names:
        return
    shown = []
    for n in names[:12]:
        c = close_matches(n)
        shown.append(f"{n!r}" + (f" (close: {', '.join(c)})" if c else ""))
    more = f" and {len(names) - 12} more" if len(names) > 12 else ""
    warnings.warn(UnknownNameWarning(f"{where}: {len(names)} shape name(s) not in the name map, ignored: "
                                     f"{'; '.join(shown)}{more}"), stacklevel=stacklevel + 1)


def weights_from_mapping(values: Mapping[str, float], *, clamp: bool = False) -> np.ndarray:
    """{any vendor name: value} -> 52 MediaPipe-order float32 vector. Unknown names -> ``KeyError``
    listing close matches; NaN/inf -> ``ValueError``; an unsided name of a sided pair sets both
    sides; one side of an unsided shape sets the shape to the max of its parts; ``tongueOut`` is
    accepted and dropped (MediaPipe has none)."""
    out = np.zeros(schema.N_MEDIAPIPE, dtype=np.float32)
    for name, value in values.items():
        m = resolve(name)
        if m is None:
            canonical_name(name)   # raises with close matches
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"blendshape {name!r}: value {value!r} is not a number") from None
        if not np.isfinite(v):
            raise ValueError(f"blendshape {name!r}: value {v} is not finite")
        if clamp:
            v = min(max(v, 0.0), 1.0)
        for t in m.targets:
            i = schema.MEDIAPIPE_INDEX.get(t)
            if i is not None:
                out[i] = max(out[i], v) if m.part else v
    return out


def vrm_preset(name: str) -> Optional[str]:
    """A VRM expression name (1.0 ``happy``/``aa``/``blinkLeft`` or 0.x ``Joy``/``A``/``Blink_L``,
    any case) -> the VRM 1.0 preset name, or None."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return _VRM_LOW.get(key)


# --- the C# table for the Unity client ---------------------------------------------------------
_CS_TEMPLATE = """// Generated by `python -m emo3d.names --csharp clients/unity/Emo3DNames.g.cs` from emo3d/names.py.
// Do not edit: tests/emo3d/test_names.py fails when this file is out of date.
using System.Collections.Generic;
using System.Text.RegularExpressions;

/// <summary>emo3d's one blendshape name map (see emo3d/names.py): any vendor name -> ARKit name.</summary>
public static class Emo3DNames
{
    static readonly string[] Canonical = { @@CANON@@ };
    static readonly string[] Filler = { @@FILLER@@ };
    static readonly Dictionary<string, string> Stems = new Dictionary<string, string> {
@@STEMS@@
    };
    static readonly Dictionary<string, string> Low = BuildLow();
    static readonly HashSet<string> Arkit = new HashSet<string>(Canonical);
    static readonly Regex Token = new Regex("[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+");

    static Dictionary<string, string> BuildLow()
    {
        var d = new Dictionary<string, string>();
        foreach (var n in Canonical) d[n.ToLowerInvariant().Replace("_", "")] = n;
        return d;
    }

    static string Side(string t)
    {
        if (t == "l" || t == "left") return "Left";
        if (t == "r" || t == "right") return "Right";
        return null;
    }

    static bool IsDigits(string s)
    {
        if (s.Length == 0) return false;
        foreach (char c in s) if (c < '0' || c > '9') return false;
        return true;
    }

    /// <summary>Lower-case tokens as in emo3d.names.tokens.</summary>
    public static List<string> Tokens(string name)
    {
        var parts = new List<string>();
        foreach (var p in Regex.Split(name.Trim(), "[.:|]")) if (p.Length > 0) parts.Add(p);
        while (parts.Count > 1 && IsDigits(parts[parts.Count - 1])) parts.RemoveAt(parts.Count - 1);
        string core;
        if (parts.Count > 1 && Side(parts[parts.Count - 1].ToLowerInvariant()) != null)
            core = parts[parts.Count - 2] + "_" + parts[parts.Count - 1];
        else core = parts.Count > 0 ? parts[parts.Count - 1] : "";
        core = Regex.Replace(core, "^[Aa][0-9][0-9]_", "");
        var toks = new List<string>();
        foreach (var chunk in Regex.Split(core, "[^A-Za-z0-9]+"))
            foreach (Match m in Token.Matches(chunk)) toks.Add(m.Value.ToLowerInvariant());
        while (toks.Count > 0 && System.Array.IndexOf(Filler, toks[0]) >= 0) toks.RemoveAt(0);
        while (toks.Count > 1 && IsDigits(toks[toks.Count - 1])) toks.RemoveAt(toks.Count - 1);
        return toks;
    }

    static string EyeLook(List<string> t)
    {
        if (t.Count != 4 || t[0] != "eye" || !t.Contains("look")) return null;
        var rest = new List<string>();
        for (int i = 1; i < t.Count; i++) if (t[i] != "look") rest.Add(t[i]);
        string side, d;
        if (Side(t[1]) != null && t[2] == "look") { side = t[1]; d = t[3]; }
        else { d = rest[0]; side = rest[1]; }
        string s = Side(side);
        if (s == null) return null;
        if (Side(d) != null) d = Side(d) == s ? "out" : "in";
        switch (d)
        {
            case "up": return "eyeLookUp" + s;
            case "down": return "eyeLookDown" + s;
            case "in": return "eyeLookIn" + s;
            case "out": return "eyeLookOut" + s;
        }
        return null;
    }

    /// <summary>ARKit names for a vendor name (one; both sides for an unsided name of a sided pair;
    /// the unsided shape for one side of it), or an empty array when unknown.</summary>
    public static string[] Resolve(string name)
    {
        var toks = Tokens(name);
        if (toks.Count == 0) return new string[0];
        string key = string.Join("", toks);
        if (key == "neutral" && name.Trim().StartsWith("_")) return new[] { "_neutral" };
        string c;
        if (key != "neutral" && Low.TryGetValue(key, out c)) return new[] { c };
        c = EyeLook(toks);
        if (c != null) return new[] { c };
        string side = null;
        string last = toks[toks.Count - 1];
        if (Side(last) != null) { side = Side(last); toks.RemoveAt(toks.Count - 1); }
        else if (Regex.IsMatch(last, "^[ud][lr]$"))
        {
            side = Side(last.Substring(1));
            toks[toks.Count - 1] = last[0] == 'u' ? "upper" : "lower";
        }
        else if (toks.Count > 2 && (toks[1] == "l" || toks[1] == "r")) { side = Side(toks[1]); toks.RemoveAt(1); }
        string stem;
        if (!Stems.TryGetValue(string.Join("", toks), out stem)) return new string[0];
        if (side != null)
        {
            if (Arkit.Contains(stem + side)) return new[] { stem + side };
            if (Arkit.Contains(stem)) return new[] { stem };
            return new string[0];
        }
        if (Arkit.Contains(stem)) return new[] { stem };
        if (Arkit.Contains(stem + "Left") && Arkit.Contains(stem + "Right")) return new[] { stem + "Left", stem + "Right" };
        return new string[0];
    }
}
"""


def csharp_source() -> str:
    """The generated C# name table (``clients/unity/Emo3DNames.g.cs``)."""
    q = lambda xs: ", ".join(f'"{x}"' for x in xs)  # noqa: E731
    stems = "\n".join(f'        {{ "{k}", "{v}" }},' for k, v in sorted(STEM_ALIASES.items()))
    return (_CS_TEMPLATE.replace("@@CANON@@", q(CANONICAL)).replace("@@FILLER@@", q(FILLER))
            .replace("@@STEMS@@", stems))


def _main(argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[0] == "--csharp":
        from emo3d.io import atomic_write_text
        atomic_write_text(argv[1], csharp_source())
        return 0
    print("usage: python -m emo3d.names --csharp OUT.cs", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
