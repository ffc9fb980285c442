"""The Unity client (clients/unity/Emo3DClient.cs) compiled with Mono's mcs against a minimal
UnityEngine stand-in, run against the real server on 127.0.0.1 (skips where mcs/mono are absent:
``apt-get install mono-mcs``)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support.assets import machine_lacks

from runtime.streaming.server import ControlServer, ServerOptions
from support.standin import StandInLoop

CLIENT = Path(__file__).resolve().parents[3] / "clients" / "unity" / "Emo3DClient.cs"
NAMES = CLIENT.with_name("Emo3DNames.g.cs")

UNITY_STUB = r"""using System;
using System.Collections.Generic;
namespace UnityEngine {
  public class MonoBehaviour {}
  public class HeaderAttribute : Attribute { public HeaderAttribute(string s) {} }
  public class TooltipAttribute : Attribute { public TooltipAttribute(string s) {} }
  public class RangeAttribute : Attribute { public RangeAttribute(float a, float b) {} }
  public static class Debug { public static void Log(object o) { Console.WriteLine(o); } public static void LogWarning(object o) { Console.WriteLine("WARN " + o); } }
  public static class Mathf { public static float Clamp01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; } }
  public static class Time { public static float unscaledTime { get { return (float)(DateTime.Now - start).TotalSeconds; } } static DateTime start = DateTime.Now; }
  public class Mesh { public List<string> names = new List<string>(); public int blendShapeCount { get { return names.Count; } } public string GetBlendShapeName(int i) { return names[i]; } }
  public class SkinnedMeshRenderer { public Mesh sharedMesh; public Dictionary<int,float> w = new Dictionary<int,float>(); public void SetBlendShapeWeight(int i, float v) { w[i] = v; } }
}
"""

HARNESS = r"""using System;
using System.Threading;
using System.Reflection;
using System.Collections.Generic;
using UnityEngine;
public static class Harness {
  public static int Main(string[] args) {
    var c = new Emo3DClient();
    c.port = int.Parse(args[0]);
    var mesh = new Mesh();
    mesh.names.AddRange(new[] { "blendShape1.JawOpen", "blendShape1.mouthSmile_L", "browInnerUp", "Other" });
    var r = new SkinnedMeshRenderer { sharedMesh = mesh };
    c.targets = new[] { r };
    c.initialPrompt = "furious \"scowl\"\n";
    var replies = new List<string>();
    c.OnReply += s => replies.Add(s);
    Invoke(c, "Start");
    c.SendWeights(new Dictionary<string, float> { { "jawOpen", 0.5f }, { "mouthSmileLeft", 0.25f } }, 0, "w1");
    c.Ping("p1");
    for (int i = 0; i < 500; i++) {
      Thread.Sleep(20); Invoke(c, "Update");
      if (replies.Count >= 3 && r.w.ContainsKey(0) && r.w[0] == 50f && i > 20) break;
    }
    foreach (var s in replies) Console.WriteLine("reply " + s);
    Console.WriteLine("frame " + c.LastFrameIndex + " jaw=" + r.w[0] + " smile=" + r.w[1] + " brow=" + r.w[2] + " other=" + r.w.ContainsKey(3) + " scores=" + c.Scores.Count);
    Console.WriteLine("norm " + Emo3DClient.NormalizeName("eyeBlink.R") + " " + Emo3DClient.NormalizeName("jawOpen.001") + " " + Emo3DClient.NormalizeName("Eye_Blink_L"));
    c.Disconnect();
    return 0;
  }
  static void Invoke(object o, string m) { o.GetType().GetMethod(m, BindingFlags.NonPublic | BindingFlags.Instance).Invoke(o, null); }
}
"""


@pytest.fixture(scope="module")
def harness_exe(tmp_path_factory):
    if not (shutil.which("mcs") and shutil.which("mono")):
        machine_lacks("Mono (mcs and mono) to compile the Unity client", "apt-get install mono-mcs mono-runtime")
    d = tmp_path_factory.mktemp("unity")
    (d / "UnityStub.cs").write_text(UNITY_STUB)
    (d / "Harness.cs").write_text(HARNESS)
    exe = d / "harness.exe"
    r = subprocess.run(["mcs", f"-out:{exe}", str(d / "UnityStub.cs"), str(d / "Harness.cs"), str(CLIENT), str(NAMES),
                        "-r:System.dll"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return exe


def test_unity_client_end_to_end(harness_exe):
    loop = StandInLoop().start()
    srv = ControlServer(loop, ServerOptions(port=0)).start()
    try:
        out = subprocess.run(["mono", str(harness_exe), str(srv.address[1])], capture_output=True, text=True,
                             timeout=60)
    finally:
        srv.close()
        loop.close()
    text = out.stdout
    assert out.returncode == 0, text + out.stderr
    assert '"request":"text"' in text and '"id":"w1"' in text and '"type":"pong","id":"p1"' in text
    assert loop.texts[0][0] == 'furious "scowl"\n'          # JSON escaping survives the trip
    frame_line = next(line for line in text.splitlines() if line.startswith("frame "))
    # weights from the stream land on the mesh by name, scaled to Unity's 0..100
    assert "jaw=50 smile=25 brow=0 other=False scores=52" in frame_line
    assert "norm eyeBlinkRight jawOpen eyeBlinkLeft" in text
