// Emo3DClient.cs - Unity client for the emo3d control-and-frames server (docs/control-protocol.md).
//
// Connects to `emo3d-run --serve` over TCP, sends prompts / weights / pings, and applies the streamed
// blendshape scores to SkinnedMeshRenderers by blendshape name and the streamed head and eye rotations to
// the bones you assign (headBone, leftEyeBone, rightEyeBone). Reconnects on its own; initialPrompt is sent
// after every (re)connect; a failing connection is logged once per outage. Uses only UnityEngine and .NET
// standard APIs (System.Net.Sockets, System.Threading, System.Text); no packages.
//
// Wire format: every message is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON.

using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using UnityEngine;

public class Emo3DClient : MonoBehaviour
{
    [Header("Server")]
    public string host = "127.0.0.1";
    public int port = 7878;
    public bool connectOnStart = true;
    [Tooltip("Seconds between reconnection attempts (0 = do not reconnect).")]
    public float reconnectSeconds = 2f;

    [Header("Face")]
    [Tooltip("Renderers whose blendshapes are driven; names are matched case-insensitively, " +
             "ignoring prefixes such as 'blendShape1.' and '_', '-', ' '.")]
    public SkinnedMeshRenderer[] targets = new SkinnedMeshRenderer[0];
    [Tooltip("Unity blendshape weights run 0..100; emo3d scores run 0..1.")]
    public float weightScale = 100f;

    [Header("Bones (optional)")]
    [Tooltip("Rotated by the frames' head pose (yaw, pitch, roll), relative to its rotation at BuildMaps().")]
    public Transform headBone;
    [Tooltip("Rotated by the frames' left-eye angles, relative to its rotation at BuildMaps().")]
    public Transform leftEyeBone;
    [Tooltip("Rotated by the frames' right-eye angles, relative to its rotation at BuildMaps().")]
    public Transform rightEyeBone;

    [Header("Prompt")]
    [Tooltip("Sent after every connect and reconnect (empty = none).")]
    public string initialPrompt = "";
    [Range(0f, 4f)] public float intensity = 1f;
    public int transitionMs = 300;

    /// <summary>Raised on the main thread for every non-frame message (ack, pong, error) as raw JSON.</summary>
    public event Action<string> OnReply;
    /// <summary>Latest frame's scores by name (main thread, after Update).</summary>
    public readonly Dictionary<string, float> Scores = new Dictionary<string, float>();
    public long LastFrameIndex { get; private set; } = -1;
    public bool Connected { get { var c = _conn; return c != null && c.open; } }

    const int MaxMessage = 1 << 20;

    /// <summary>One TCP connection with its own threads, so a stale one can never disturb a new one.</summary>
    sealed class Connection
    {
        public TcpClient client;
        public NetworkStream stream;
        public volatile bool open;
        public volatile bool closed;
        public readonly BlockingCollection<byte[]> outbox =
            new BlockingCollection<byte[]>(new ConcurrentQueue<byte[]>(), 256);
    }

    Connection _conn;
    bool _wantConnected;
    volatile bool _lost;
    readonly object _frameLock = new object();
    Dictionary<string, float> _pendingFrame;   // newest unapplied frame (older ones are skipped)
    long _pendingIndex = -1;
    float[] _pendingPose;                      // head yaw, pitch, roll, left eye x3, right eye x3 (radians)
    volatile bool _outageLogged;               // a failing connection is reported once until one succeeds
    Quaternion _headRest = Quaternion.identity, _leftEyeRest = Quaternion.identity,
               _rightEyeRest = Quaternion.identity;
    const float Rad2Deg = (float)(180.0 / Math.PI);
    readonly ConcurrentQueue<string> _replies = new ConcurrentQueue<string>();
    readonly List<Dictionary<string, List<int>>> _maps = new List<Dictionary<string, List<int>>>();
    readonly Dictionary<string, string> _normalized = new Dictionary<string, string>();
    float _retryAt = -1f;

    void Start()
    {
        BuildMaps();
        if (connectOnStart) Connect();   // initialPrompt goes out once the connection is up (and after reconnects)
    }

    // ------------------------------------------------------------------ public API
    public void Connect()
    {
        Close(_conn);
        _wantConnected = true;
        _retryAt = -1f;
        var conn = new Connection();
        _conn = conn;
        new Thread(() => ReadLoop(conn)) { IsBackground = true, Name = "emo3d-read" }.Start();
    }

    public void Disconnect()
    {
        _wantConnected = false;
        Close(_conn);
        _conn = null;
    }

    static void Close(Connection c)
    {
        if (c == null) return;
        c.closed = true;
        c.open = false;
        try { c.outbox.CompleteAdding(); } catch (ObjectDisposedException) { }
        try { if (c.stream != null) c.stream.Close(); } catch (Exception) { }
        try { if (c.client != null) c.client.Close(); } catch (Exception) { }
    }

    /// <summary>Ask the server to show the expression of a text, e.g. "furious scowl".</summary>
    /// <exception cref="ArgumentException">text is empty, or intensity is NaN/infinite or outside 0..4.</exception>
    public void SendText(string text, float intensity = 1f, int transitionMs = 300, string id = null)
    {
        Enqueue(TextJson(text, intensity, transitionMs, id));
    }

    static string TextJson(string text, float intensity, int transitionMs, string id)
    {
        if (string.IsNullOrEmpty(text) || text.Trim().Length == 0)
            throw new ArgumentException("emo3d: text is empty; send a description such as \"furious scowl\"", "text");
        if (float.IsNaN(intensity) || float.IsInfinity(intensity) || intensity < 0f || intensity > 4f)
            throw new ArgumentException("emo3d: intensity must be a finite number in 0..4, got " +
                                        intensity.ToString(CultureInfo.InvariantCulture), "intensity");
        var sb = new StringBuilder("{\"type\":\"text\",\"text\":");
        AppendString(sb, text);
        sb.Append(",\"intensity\":").Append(intensity.ToString("R", CultureInfo.InvariantCulture));
        sb.Append(",\"transition_ms\":").Append(Math.Min(60000, Math.Max(0, transitionMs)).ToString(CultureInfo.InvariantCulture));
        AppendId(sb, id);
        return sb.Append('}').ToString();
    }

    /// <summary>Set explicit blendshape weights (ARKit names, 0..1); missing names are 0.</summary>
    /// <exception cref="ArgumentException">a value is NaN or infinite.</exception>
    public void SendWeights(IDictionary<string, float> weights, int transitionMs = 200, string id = null)
    {
        if (weights == null) throw new ArgumentNullException("weights");
        foreach (var kv in weights)
            if (float.IsNaN(kv.Value) || float.IsInfinity(kv.Value))
                throw new ArgumentException("emo3d: weight " + kv.Key + " is " +
                                            kv.Value.ToString(CultureInfo.InvariantCulture) +
                                            "; weights are finite numbers in 0..1", "weights");
        var sb = new StringBuilder("{\"type\":\"weights\",\"weights\":{");
        bool first = true;
        foreach (var kv in weights)
        {
            if (!first) sb.Append(',');
            first = false;
            AppendString(sb, kv.Key);
            sb.Append(':').Append(kv.Value.ToString("R", CultureInfo.InvariantCulture));
        }
        sb.Append("},\"transition_ms\":").Append(Math.Max(0, transitionMs).ToString(CultureInfo.InvariantCulture));
        AppendId(sb, id);
        Enqueue(sb.Append('}').ToString());
    }

    public void Ping(string id = null)
    {
        var sb = new StringBuilder("{\"type\":\"ping\"");
        AppendId(sb, id);
        Enqueue(sb.Append('}').ToString());
    }

    /// <summary>Call after changing <see cref="targets"/> or the bones at runtime (the bones' current
    /// local rotations become their rest rotations).</summary>
    public void BuildMaps()
    {
        if (headBone != null) _headRest = headBone.localRotation;
        if (leftEyeBone != null) _leftEyeRest = leftEyeBone.localRotation;
        if (rightEyeBone != null) _rightEyeRest = rightEyeBone.localRotation;
        _maps.Clear();
        foreach (var r in targets)
        {
            var map = new Dictionary<string, List<int>>();
            if (r != null && r.sharedMesh != null)
            {
                var mesh = r.sharedMesh;
                for (int i = 0; i < mesh.blendShapeCount; i++)
                {
                    // one name map (Emo3DNames.g.cs, generated from emo3d/names.py): "eyeBlink.L",
                    // "Eye_Blink_L", "CTRL_expressions_jawOpen" ... -> ARKit names (both sides for "mouthSmile")
                    foreach (string key in Emo3DNames.Resolve(mesh.GetBlendShapeName(i)))
                    {
                        List<int> list;
                        if (!map.TryGetValue(key, out list)) map[key] = list = new List<int>();
                        list.Add(i);
                    }
                }
            }
            _maps.Add(map);
        }
    }

    /// <summary>Any vendor shape name -> its ARKit name through the one name map (Emo3DNames.g.cs):
    /// "blendShape1.JawOpen", "jawOpen.001", "Eye_Blink_L" -> "jawOpen", "jawOpen", "eyeBlinkLeft";
    /// unknown names come back lower-cased.</summary>
    public static string NormalizeName(string name)
    {
        var r = Emo3DNames.Resolve(name);
        return r.Length > 0 ? r[0] : name.ToLowerInvariant();
    }

    // ------------------------------------------------------------------ main thread
    void Update()
    {
        string reply;
        while (_replies.TryDequeue(out reply))
        {
            if (OnReply != null) OnReply(reply);
            else if (reply.Contains("\"type\":\"error\"")) Debug.LogWarning("emo3d: " + reply);
        }

        Dictionary<string, float> frame = null;
        float[] pose = null;
        lock (_frameLock)
        {
            if (_pendingFrame != null)
            {
                frame = _pendingFrame;
                pose = _pendingPose;
                LastFrameIndex = _pendingIndex;
                _pendingFrame = null;
            }
        }
        if (frame != null) Apply(frame);
        if (pose != null) ApplyPose(pose);

        if (_lost)
        {
            _lost = false;
            if (_wantConnected && reconnectSeconds > 0f) _retryAt = Time.unscaledTime + reconnectSeconds;
        }
        if (_retryAt > 0f && Time.unscaledTime >= _retryAt)
        {
            _retryAt = -1f;
            if (_wantConnected) Connect();
        }
    }

    void Apply(Dictionary<string, float> frame)
    {
        Scores.Clear();
        for (int t = 0; t < targets.Length && t < _maps.Count; t++)
        {
            var r = targets[t];
            if (r == null) continue;
            var map = _maps[t];
            foreach (var kv in frame)
            {
                string key;
                if (!_normalized.TryGetValue(kv.Key, out key)) _normalized[kv.Key] = key = NormalizeName(kv.Key);
                List<int> indices;
                if (map.TryGetValue(key, out indices))
                    foreach (int index in indices) r.SetBlendShapeWeight(index, Mathf.Clamp01(kv.Value) * weightScale);
            }
        }
        foreach (var kv in frame) Scores[kv.Key] = kv.Value;
    }

    /// <summary>emo3d pose (radians; +yaw toward the subject's left, +pitch down, +roll toward the right
    /// shoulder; docs: emo3d/pose.py) -> a Unity local rotation: the x axis is mirrored (Unity's +x is the
    /// avatar's right), so yaw and roll change sign; Unity applies Euler angles as Ry * Rx * Rz like emo3d.</summary>
    public static Quaternion PoseRotation(float yaw, float pitch, float roll)
    {
        return Quaternion.Euler(pitch * Rad2Deg, -yaw * Rad2Deg, -roll * Rad2Deg);
    }

    void ApplyPose(float[] p)
    {
        if (headBone != null) headBone.localRotation = _headRest * PoseRotation(p[0], p[1], p[2]);
        if (leftEyeBone != null) leftEyeBone.localRotation = _leftEyeRest * PoseRotation(p[3], p[4], p[5]);
        if (rightEyeBone != null) rightEyeBone.localRotation = _rightEyeRest * PoseRotation(p[6], p[7], p[8]);
    }

    void OnDestroy() { Disconnect(); }
    void OnApplicationQuit() { Disconnect(); }

    // ------------------------------------------------------------------ network threads
    void ReadLoop(Connection c)
    {
        try
        {
            c.client = new TcpClient { NoDelay = true };
            c.client.Connect(host, port);
            c.stream = c.client.GetStream();
            c.open = true;
            _outageLogged = false;
            string prompt = initialPrompt;
            if (!string.IsNullOrEmpty(prompt) && prompt.Trim().Length > 0)
            {   // after every (re)connect, ahead of anything queued meanwhile (the writer starts below)
                byte[] first = null;
                try { first = Frame(TextJson(prompt, intensity, transitionMs, null)); }
                catch (ArgumentException e) { _replies.Enqueue(ClientError("initialPrompt not sent: " + e.Message)); }
                if (first != null) c.stream.Write(first, 0, first.Length);
            }
            new Thread(() => WriteLoop(c)) { IsBackground = true, Name = "emo3d-write" }.Start();
            var header = new byte[4];
            while (!c.closed)
            {
                if (!ReadExactly(c.stream, header, 4)) break;
                int n = (header[0] << 24) | (header[1] << 16) | (header[2] << 8) | header[3];
                if (n < 0 || n > MaxMessage) throw new Exception("message of " + n + " bytes is too large");
                var body = new byte[n];
                if (!ReadExactly(c.stream, body, n)) break;
                Handle(Encoding.UTF8.GetString(body));
            }
        }
        catch (Exception e)
        {
            if (!c.closed && !_outageLogged)   // once per outage, not once per retry
            {
                _outageLogged = true;
                string retry = reconnectSeconds > 0f
                    ? "; retrying every " + reconnectSeconds.ToString(CultureInfo.InvariantCulture) + " s (logged once until connected)"
                    : "";
                _replies.Enqueue(ClientError(host + ":" + port + ": " + e.Message + retry));
            }
        }
        finally
        {
            bool wasCurrent = !c.closed;
            Close(c);
            if (wasCurrent) _lost = true;   // Update() schedules the reconnection on the main thread
        }
    }

    static void WriteLoop(Connection c)
    {
        try
        {
            foreach (var data in c.outbox.GetConsumingEnumerable())
                c.stream.Write(data, 0, data.Length);
        }
        catch (Exception) { /* connection gone: the reader reports it */ }
    }

    static string ClientError(string message)
    {
        return "{\"type\":\"error\",\"code\":\"client\",\"message\":" + Quote(message) + "}";
    }

    static byte[] Frame(string json)
    {
        byte[] body = Encoding.UTF8.GetBytes(json);
        var msg = new byte[4 + body.Length];
        msg[0] = (byte)(body.Length >> 24); msg[1] = (byte)(body.Length >> 16);
        msg[2] = (byte)(body.Length >> 8); msg[3] = (byte)body.Length;
        Buffer.BlockCopy(body, 0, msg, 4, body.Length);
        return msg;
    }

    void Enqueue(string json)
    {
        var msg = Frame(json);
        var c = _conn;
        if (c == null) { Debug.LogWarning("emo3d: not connected; call Connect() first"); return; }
        try { c.outbox.TryAdd(msg); } catch (InvalidOperationException) { /* closed (also ObjectDisposed) */ }
    }

    static bool ReadExactly(NetworkStream s, byte[] buf, int n)
    {
        int got = 0;
        while (got < n)
        {
            int k = s.Read(buf, got, n - got);
            if (k <= 0) return false;
            got += k;
        }
        return true;
    }

    void Handle(string json)
    {
        var msg = MiniJson.Parse(json) as Dictionary<string, object>;
        if (msg == null) return;
        object type;
        if (msg.TryGetValue("type", out type) && (type as string) == "frame")
        {
            object w, idx;
            var weights = new Dictionary<string, float>();
            if (msg.TryGetValue("weights", out w) && w is Dictionary<string, object>)
                foreach (var kv in (Dictionary<string, object>)w)
                    if (kv.Value is double) weights[kv.Key] = (float)(double)kv.Value;
            long index = msg.TryGetValue("index", out idx) && idx is double ? (long)(double)idx : -1;
            float[] pose = new float[9];
            bool havePose = ReadFloats(msg, "head", pose, 0, 3) & ReadFloats(msg, "eyes", pose, 3, 6);
            lock (_frameLock) { _pendingFrame = weights; _pendingIndex = index; _pendingPose = havePose ? pose : null; }
        }
        else
        {
            _replies.Enqueue(json);
        }
    }

    static bool ReadFloats(Dictionary<string, object> msg, string key, float[] dst, int at, int n)
    {
        object v;
        var list = msg.TryGetValue(key, out v) ? v as List<object> : null;
        if (list == null || list.Count < n) return false;
        for (int k = 0; k < n; k++)
        {
            if (!(list[k] is double)) return false;
            double d = (double)list[k];
            if (double.IsNaN(d) || double.IsInfinity(d)) return false;
            dst[at + k] = (float)d;
        }
        return true;
    }

    static void AppendId(StringBuilder sb, string id)
    {
        if (id != null) { sb.Append(",\"id\":"); AppendString(sb, id); }
    }

    static string Quote(string s) { var sb = new StringBuilder(); AppendString(sb, s); return sb.ToString(); }

    static void AppendString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s ?? "")
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>Minimal JSON reader: objects -> Dictionary, arrays -> List, numbers -> double.</summary>
    public static class MiniJson
    {
        public static object Parse(string s)
        {
            int i = 0;
            try { return Value(s, ref i); } catch (Exception) { return null; }
        }

        static void Ws(string s, ref int i) { while (i < s.Length && char.IsWhiteSpace(s[i])) i++; }

        static object Value(string s, ref int i)
        {
            Ws(s, ref i);
            char c = s[i];
            if (c == '{')
            {
                var d = new Dictionary<string, object>();
                i++; Ws(s, ref i);
                if (s[i] == '}') { i++; return d; }
                while (true)
                {
                    Ws(s, ref i);
                    string k = Str(s, ref i);
                    Ws(s, ref i); i++; // ':'
                    d[k] = Value(s, ref i);
                    Ws(s, ref i);
                    if (s[i++] == '}') return d;
                }
            }
            if (c == '[')
            {
                var l = new List<object>();
                i++; Ws(s, ref i);
                if (s[i] == ']') { i++; return l; }
                while (true)
                {
                    l.Add(Value(s, ref i));
                    Ws(s, ref i);
                    if (s[i++] == ']') return l;
                }
            }
            if (c == '"') return Str(s, ref i);
            if (string.CompareOrdinal(s, i, "true", 0, 4) == 0) { i += 4; return true; }
            if (string.CompareOrdinal(s, i, "false", 0, 5) == 0) { i += 5; return false; }
            if (string.CompareOrdinal(s, i, "null", 0, 4) == 0) { i += 4; return null; }
            int start = i;
            while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
            return double.Parse(s.Substring(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        static string Str(string s, ref int i)
        {
            var sb = new StringBuilder();
            i++; // opening quote
            while (s[i] != '"')
            {
                char c = s[i++];
                if (c != '\\') { sb.Append(c); continue; }
                char e = s[i++];
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'u': sb.Append((char)Convert.ToInt32(s.Substring(i, 4), 16)); i += 4; break;
                    default: sb.Append(e); break;
                }
            }
            i++;
            return sb.ToString();
        }
    }
}
