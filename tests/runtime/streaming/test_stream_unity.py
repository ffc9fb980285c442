"""The Unity client (clients/unity/Emo3DClient.cs) compiled with Mono's mcs against a minimal
UnityEngine stand-in, run against the real server on 127.0.0.1 (skips where mcs/mono are absent:
``apt-get install mono-mcs``)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np

import pytest
from support.assets import machine_lacks

from runtime.streaming.server import ControlServer, ServerOptions
from runtime.streaming.vmc_bones import unity_quaternion
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
  public struct Quaternion {
    public float x, y, z, w;
    public Quaternion(float x, float y, float z, float w) { this.x = x; this.y = y; this.z = z; this.w = w; }
    public static Quaternion identity { get { return new Quaternion(0, 0, 0, 1); } }
    public static Quaternion operator *(Quaternion a, Quaternion b) {
      return new Quaternion(a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y, a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
                            a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w, a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z); }
    // Unity's documented order: z about Z, then x about X, then y about Y (q = qy * qx * qz), degrees
    public static Quaternion Euler(float x, float y, float z) {
      double r = Math.PI / 360.0;
      var qx = new Quaternion((float)Math.Sin(x * r), 0, 0, (float)Math.Cos(x * r));
      var qy = new Quaternion(0, (float)Math.Sin(y * r), 0, (float)Math.Cos(y * r));
      var qz = new Quaternion(0, 0, (float)Math.Sin(z * r), (float)Math.Cos(z * r));
      return qy * qx * qz; }
    public override string ToString() { return x.ToString("R") + " " + y.ToString("R") + " " + z.ToString("R") + " " + w.ToString("R"); }
  }
  public class Transform { public Quaternion localRotation = Quaternion.identity; }
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
    c.headBone = new Transform(); c.leftEyeBone = new Transform(); c.rightEyeBone = new Transform();
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
    Console.WriteLine("head " + c.headBone.localRotation);
    Console.WriteLine("leye " + c.leftEyeBone.localRotation);
    Console.WriteLine("reye " + c.rightEyeBone.localRotation);
    try { c.SendText("calm", float.NaN); Console.WriteLine("nan sent"); }
    catch (ArgumentException e) { Console.WriteLine("nan refused: " + e.Message); }
    try { c.SendWeights(new Dictionary<string, float> { { "jawOpen", float.PositiveInfinity } }); Console.WriteLine("inf sent"); }
    catch (ArgumentException e) { Console.WriteLine("inf refused: " + e.Message); }
    Console.WriteLine("norm " + Emo3DClient.NormalizeName("eyeBlink.R") + " " + Emo3DClient.NormalizeName("jawOpen.001") + " " + Emo3DClient.NormalizeName("Eye_Blink_L"));
    c.Disconnect();
    return 0;
  }
  public static void Invoke(object o, string m) { o.GetType().GetMethod(m, BindingFlags.NonPublic | BindingFlags.Instance).Invoke(o, null); }
}
public static class Outage {
  // args: port seconds stopfile. The server is down at Start, comes up, goes down, comes up again.
  public static int Main(string[] args) {
    var c = new Emo3DClient();
    c.port = int.Parse(args[0]);
    c.reconnectSeconds = 0.2f;
    c.initialPrompt = "calm smile";
    int clientErrors = 0;
    c.OnReply += s => { if (s.Contains("\"code\":\"client\"")) { clientErrors++; Console.WriteLine("client-error " + s); } };
    Harness.Invoke(c, "Start");
    var end = DateTime.Now.AddSeconds(double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture));
    while (DateTime.Now < end && !System.IO.File.Exists(args[2])) { Thread.Sleep(20); Harness.Invoke(c, "Update"); }
    Console.WriteLine("client-errors " + clientErrors);
    c.Disconnect();
    return 0;
  }
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
    r = subprocess.run(["mcs", f"-out:{exe}", "-main:Harness", str(d / "UnityStub.cs"), str(d / "Harness.cs"),
                        str(CLIENT), str(NAMES), "-r:System.dll"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    outage = d / "outage.exe"
    r = subprocess.run(["mcs", f"-out:{outage}", "-main:Outage", str(d / "UnityStub.cs"), str(d / "Harness.cs"),
                        str(CLIENT), str(NAMES), "-r:System.dll"], capture_output=True, text=True, timeout=120)
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
    # NaN / inf are refused in the client (the server would get invalid JSON otherwise)
    assert "nan refused: emo3d: intensity must be a finite number" in text and "inf refused: emo3d: weight jawOpen" in text
    # the frames' head and eye angles land on the assigned bones, with the same Unity rotation the VMC bones use
    lines = {ln.split(" ", 1)[0]: ln.split(" ", 1)[1] for ln in text.splitlines() if ln.split(" ", 1)[0] in
             ("head", "leye", "reye")}
    frame = loop.step()                                      # the stand-in's fixed pose
    for key, pose in (("head", frame.head), ("leye", frame.eyes[:3]), ("reye", frame.eyes[3:])):
        got = [float(v) for v in lines[key].split()]
        assert np.allclose(got, unity_quaternion(*pose), atol=1e-5), (key, got)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(cond, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        time.sleep(0.05)
    return cond()


def test_unity_client_outage_reconnect_and_initial_prompt(harness_exe, tmp_path):
    """Server down at Start, then up, down and up again: initialPrompt reaches both servers, and the refused
    connections are reported once per outage (3: before the first server, between them, after the second),
    not once per retry (~7 per outage at one retry every 0.2 s)."""
    port, stop = _free_port(), tmp_path / "stop"
    proc = subprocess.Popen(["mono", str(harness_exe.with_name("outage.exe")), str(port), "40", str(stop)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)                                     # ~7 refused attempts
        for _ in range(2):
            loop = StandInLoop()
            srv = ControlServer(loop, ServerOptions(port=port)).start()
            try:
                assert _until(lambda: loop.texts), "initialPrompt never arrived"
                assert loop.texts[0][0] == "calm smile"
            finally:
                srv.close()
            time.sleep(1.5)                                 # another outage
        stop.touch()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert "client-errors 3" in out, out
    assert "refused" in out.lower() and "logged once" in out
