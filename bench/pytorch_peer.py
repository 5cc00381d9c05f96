#!/usr/bin/env python3
"""PyTorch peer of `npm run bench:node -- --peer pytorch`.

Times torch.nn.functional.batch_norm on bench:node's cases and modes with bench:node's method:
CUDA events around K back-to-back calls, K chosen per implementation so that one sample holds at
least minSampleMs of GPU work; a warm-up of at least warmupMs per case and mode with the
implementations interleaved; then `samples` rounds, one sample of each implementation per round
(order rotated); medians of the per-call times.

Implementations: 'eager' (one Python call per repetition), 'cuda graph' (calls captured into a
CUDA graph and replayed, without PyTorch's host overhead), 'torch.compile' (with "compile": true;
skipped with its error if it fails), and PyTorch's device-to-device copy of the mode's compulsory
bytes (`dst.copy_(src)`, eager and graph-replayed), the roofline check of bench:node.

Modes: 'inference' (running statistics), 'training forward' (batch statistics, running update),
'forward+backward' (training forward, then dx, dgamma and dbeta through autograd, gamma and beta
requiring grad). NHWC and other channels-last layouts are PyTorch's channels_last memory: the
tensor is allocated in the case's layout and permuted to (N, C, ...). gamma = 1, beta = 0, the
running statistics set to the batch's, as bench:node does. The data are seeded normal samples
(x ~ N(1, 2), dy ~ N(0, 1)) from torch's generator, so not the same numbers as bench:node's: y (or
dx) is checked against a float64 computation on the GPU.

The normalization family: a case with "norm" (LayerNorm, RMSNorm, GroupNorm with
"numGroups", InstanceNorm) times F.layer_norm / F.rms_norm (torch >= 2.4) over the last dimension,
F.group_norm, or F.instance_norm (batch statistics), weight 1 and bias 0 of the layer's size
(RMSNorm: no bias), in the modes of "familyModes": 'forward' (x read, y written: 2 floats per
element) and 'backward' alone (dx, dweight and dbias through autograd from a forward pass made
once, retain_graph=True; x and dy read, dx written: 3 floats per element). GroupNorm and
InstanceNorm tensors are allocated in the case's layout (NHWC: channels_last memory), as
BatchNorm's are. y (or dx) is checked against a float64 computation on the GPU.

Input: a JSON object, as the first argument (or a path to a file holding it) or on stdin:
  {"cases": [{"layout": "NCHW", "shape": [8, 32, 32, 32]},
             {"norm": "GroupNorm", "numGroups": 32, "layout": "NHWC", "shape": [16, 64, 64, 256]}, ...],
   "modes": ["inference", "training forward", "forward+backward"],
   "familyModes": ["forward", "backward"],
   "samples": 7, "minSampleMs": 4, "warmupMs": 300, "tolerance": 1e-4,
   "eps": 1e-5, "momentum": 0.1, "compile": false}
  ("familyModes" defaults to forward when "modes" has inference or training forward, and backward
  when it has forward+backward, as bench:node chooses them.)
Output: one JSON object on the last line of stdout:
  {"available": false, "reason": "..."} without torch or CUDA, otherwise
  {"available": true, "torch": ..., "cuda": ..., "cudnn": ..., "device": ..., "rows": [...]}
  with rows {layout, shape, norm?, numGroups?, mode, impl, k, inner, gpu: {medianMs, minMs, iterations},
  bytes, gbPerS, maxError, ok, error?}; a progress line per row goes to stderr. Exit status 0 unless the input is bad.
"""
import json
import os
import math
import statistics
import sys
import time

MODES = ("inference", "training forward", "forward+backward")
FAMILY_MODES = ("forward", "backward")
FAMILY_NORMS = ("LayerNorm", "RMSNorm", "GroupNorm", "InstanceNorm")
CHANNEL_AXIS = {"NC": 1, "NCL": 1, "NLC": 2, "NCHW": 1, "NHWC": 3, "NCDHW": 1, "NDHWC": 4}
MAX_K = 10_000
K_MARGIN = 1.25


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def progress(line):
    print(f"  torch  {line}", file=sys.stderr, flush=True)


def read_config():
    if len(sys.argv) > 1 and sys.argv[1] != "-":
        text = sys.argv[1]
        if not text.lstrip().startswith("{"):
            with open(text) as f:
                text = f.read()
    else:
        text = sys.stdin.read()
    cfg = json.loads(text or "{}")
    cfg.setdefault("cases", [])
    cfg.setdefault("modes", list(MODES))
    cfg.setdefault("samples", 7)
    cfg.setdefault("minSampleMs", 4.0)
    cfg.setdefault("warmupMs", 300.0)
    cfg.setdefault("tolerance", 1e-4)
    cfg.setdefault("eps", 1e-5)
    cfg.setdefault("momentum", 0.1)
    cfg.setdefault("compile", False)
    for c in cfg["cases"]:
        if c.get("layout") not in CHANNEL_AXIS or len(c.get("shape", [])) != (2 if c["layout"] == "NC" else len(c["layout"])):
            raise ValueError(f"bad case {c}")
        if "norm" in c:
            if c["norm"] not in FAMILY_NORMS:
                raise ValueError(f"bad case {c}: norm must be one of {FAMILY_NORMS}")
            if c["norm"] == "GroupNorm":
                channels = c["shape"][CHANNEL_AXIS[c["layout"]]]
                groups = c.setdefault("numGroups", 32)
                if not (isinstance(groups, int) and groups >= 1 and channels % groups == 0):
                    raise ValueError(f"bad case {c}: numGroups must divide the {channels} channels")
    for m in cfg["modes"]:
        if m not in MODES:
            raise ValueError(f"bad mode {m!r}; expected one of {MODES}")
    if "familyModes" not in cfg:
        fam = []
        if "inference" in cfg["modes"] or "training forward" in cfg["modes"]:
            fam.append("forward")
        if "forward+backward" in cfg["modes"]:
            fam.append("backward")
        cfg["familyModes"] = fam
    for m in cfg["familyModes"]:
        if m not in FAMILY_MODES:
            raise ValueError(f"bad family mode {m!r}; expected one of {FAMILY_MODES}")
    return cfg


def case_name(c):
    dims = f"[{','.join(str(d) for d in c['shape'])}]"
    norm = c.get("norm")
    if not norm:
        return f"{c['layout']} {dims}"
    if norm in ("LayerNorm", "RMSNorm"):
        return f"{norm} {dims}"
    groups = f"/{c.get('numGroups', 32)}" if norm == "GroupNorm" else ""
    return f"{norm}{groups} {c['layout']} {dims}"


def choose_k(per_call_ms, min_ms):
    if not per_call_ms > 0:
        return MAX_K
    return min(MAX_K, max(1, math.ceil(K_MARGIN * min_ms / per_call_ms)))


def summary(times):
    s = sorted(times)
    return {"medianMs": statistics.median(s), "minMs": s[0], "iterations": len(s)}


class Impl:
    """A timed implementation: `call()` enqueues `calls` calls (a graph replay: `inner` of them)."""

    def __init__(self, name, call, calls=1, bytes_=0):
        self.name, self.call, self.calls, self.bytes = name, call, calls, bytes_
        self.k = 1  # units (call() invocations) per sample
        self.times = []
        self.max_error = None
        self.ok = True
        self.error = None


def run(cfg, torch, rows):
    import torch.nn.functional as F

    dev = torch.device("cuda")
    eps, momentum = cfg["eps"], cfg["momentum"]
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def sample(impl):
        start.record()
        for _ in range(impl.k):
            impl.call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def time_interleaved(impls):
        began = time.perf_counter()
        for rnd in range(100):
            changed = False
            for t in impls:
                ms = sample(t)
                if ms < cfg["minSampleMs"] and t.k < MAX_K:
                    k = choose_k(ms / t.k, cfg["minSampleMs"])
                    if k > t.k:
                        t.k, changed = k, True
            if (time.perf_counter() - began) * 1e3 >= cfg["warmupMs"] and not changed and rnd >= 1:
                break
        for rnd in range(cfg["samples"]):
            for j in range(len(impls)):
                t = impls[(rnd + j) % len(impls)]
                t.times.append(sample(t) / (t.k * t.calls))

    def graphed(fn, inner):
        """A CUDA graph of `inner` calls of fn (warmed up on a side stream first) and fn's last output."""
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(inner):
                out = fn()
        return g, out

    def graphed_backward(forward, backward):
        """For the family's backward alone: `capture(inner)` gives a CUDA graph of `inner` calls of
        backward(y) and the last one's output, y = forward() made once, uncaptured, on the capture
        stream (autograd runs each backward op on its forward op's stream, which must be the
        capturing one), and backward warmed up there first."""
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            y = forward()
            for _ in range(3):
                backward(y)
        torch.cuda.current_stream().wait_stream(s)

        def capture(inner):
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, stream=s):
                for _ in range(inner):
                    out = backward(y)
            return g, out
        return capture

    def graph_impl(name, fn, bytes_, capture=None):
        """Graph-replayed fn (or the graphs `capture(inner)` makes): a one-call graph estimates a
        call's time, then enough calls per graph for ~0.2 ms."""
        if capture is None:
            def capture(inner):
                return graphed(fn, inner)
        g1, _ = capture(1)
        g1.replay()
        torch.cuda.synchronize()
        start.record()
        for _ in range(10):
            g1.replay()
        end.record()
        end.synchronize()
        inner = min(64, max(1, math.ceil(0.2 / max(start.elapsed_time(end) / 10, 1e-4))))
        del g1
        g, out = capture(inner)
        impl = Impl(name, g.replay, inner, bytes_)
        impl.graph, impl.out = g, out
        return impl

    def add_row(c, mode, t):
        gpu = summary(t.times) if t.times else None
        row = {"layout": c["layout"], "shape": c["shape"]}
        if c.get("norm"):
            row["norm"] = c["norm"]
            if c["norm"] == "GroupNorm":
                row["numGroups"] = c["numGroups"]
        row.update({
            "mode": mode, "impl": t.name,
            "k": t.k * t.calls, "inner": t.calls, "gpu": gpu, "bytes": t.bytes,
            "gbPerS": t.bytes / (gpu["medianMs"] * 1e6) if gpu else None,
            "maxError": t.max_error, "ok": t.ok,
        })
        if t.error:
            row["error"] = t.error
        rows.append(row)
        check = "" if t.max_error is None else (f", max error {t.max_error:.1e}" if not t.name.startswith("copy") else (", exact" if t.max_error == 0 else f", {t.max_error} differ"))
        if gpu:
            progress(f"{case_name(c)} · {mode} · {t.name}: {gpu['medianMs']:.4f} ms (min {gpu['minMs']:.4f}, K={t.k * t.calls}), "
                     f"{row['gbPerS']:.1f} GB/s{check}{'' if t.ok else ' OFF THE REFERENCE'}")
        else:
            progress(f"{case_name(c)} · {mode} · {t.name}: not timed: {t.error}")

    def copy_impls(c, mode, impls, floats_per_element, n):
        """PyTorch's device-to-device copy of the mode's compulsory bytes, as bench:node's copies; the copy buffers."""
        m = math.ceil(floats_per_element / 2 * n / 4) * 4
        gen = torch.Generator(device=dev)
        gen.manual_seed(3)
        src = torch.randn(m, generator=gen, device=dev)
        dst = torch.empty_like(src)
        copies = [Impl("copy_ eager", lambda: dst.copy_(src), 1, 2 * m * 4)]
        try:
            copies.append(graph_impl("copy_ graph", lambda: dst.copy_(src), 2 * m * 4))
        except Exception as e:  # noqa: BLE001
            progress(f"{case_name(c)} · {mode} · copy_ graph: failed: {e}")
        for t in copies:
            dst.zero_()
            t.call()
            torch.cuda.synchronize()
            t.max_error = int((dst != src).sum())
            t.ok = t.max_error == 0
        impls.extend(copies)
        return src, dst

    def family_case(c):
        """A normalization-family case (see the module's docstring)."""
        norm, layout, shape = c["norm"], c["layout"], list(c["shape"])
        rows_norm = norm in ("LayerNorm", "RMSNorm")
        n = math.prod(shape)
        if rows_norm:
            perm = list(range(len(shape)))
            size = shape[-1]
            params = size
        else:
            axis = CHANNEL_AXIS[layout]
            perm = [0, axis] + [d for d in range(1, len(shape)) if d != axis]
            params = shape[axis]
        groups = params if norm == "InstanceNorm" else c.get("numGroups", 32)
        gen = torch.Generator(device=dev)
        gen.manual_seed(1)
        # Allocated in the case's layout, seen as (N, C, ...): NHWC is channels_last memory.
        x = (torch.randn(shape, generator=gen, device=dev) * 2 + 1).permute(perm)
        gen.manual_seed(2)
        dy = torch.randn(shape, generator=gen, device=dev).permute(perm)

        def grouped(t):
            """(groups, elements per group) in logical order: rows, or (sample, group of channels)."""
            return t.reshape(-1, size) if rows_norm else t.reshape(x.shape[0] * groups, -1)

        if norm == "RMSNorm" and not hasattr(F, "rms_norm"):
            for mode in cfg["familyModes"]:
                t = Impl("eager", None, 1, 0)
                t.error = f"F.rms_norm needs torch >= 2.4; this is {torch.__version__}"
                add_row(c, mode, t)
            return

        def fn(xx, w, b):
            if norm == "LayerNorm":
                return F.layer_norm(xx, (size,), w, b, eps)
            if norm == "RMSNorm":
                return F.rms_norm(xx, (size,), w, eps)
            if norm == "GroupNorm":
                return F.group_norm(xx, groups, w, b, eps)
            return F.instance_norm(xx, None, None, w, b, True, momentum, eps)

        xd = grouped(x.double())
        if norm == "RMSNorm":
            mean = torch.zeros_like(xd[:, :1])
            var = (xd * xd).mean(1, keepdim=True)
        else:
            mean = xd.mean(1, keepdim=True)
            var = ((xd - mean) ** 2).mean(1, keepdim=True)
        invstd = (var + eps).rsqrt()
        xhat = (xd - mean) * invstd
        del xd, var
        w, b = torch.ones(params, device=dev), torch.zeros(params, device=dev)
        wg, bg = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        xg = x.detach().requires_grad_(True)
        wrt = (xg, wg) if norm == "RMSNorm" else (xg, wg, bg)

        for mode in cfg["familyModes"]:
            backward = mode == "backward"
            if backward:
                dyd = grouped(dy.double())
                centered = 0 if norm == "RMSNorm" else dyd.mean(1, keepdim=True)
                ref = invstd * (dyd - centered - xhat * (dyd * xhat).mean(1, keepdim=True))
                del dyd, centered
            else:
                ref = xhat
            floats = 3 if backward else 2
            bytes_ = floats * n * 4

            def check(t, out_fn):
                out = out_fn()
                torch.cuda.synchronize()
                t.max_error = float((grouped(out.double()) - ref).abs().max())
                if math.isnan(t.max_error):
                    t.max_error = math.inf
                t.ok = t.max_error <= cfg["tolerance"]

            def grad_of(y):
                return torch.autograd.grad(y, wrt, dy, retain_graph=True)[0]

            def make(f):
                """The timed call: a forward of f, or (backward) dx of a forward of f made once."""
                if not backward:
                    return lambda: f(x, w, b)
                y = f(xg, wg, bg)
                return lambda: grad_of(y)

            impls = []
            eager = Impl("eager", make(fn), 1, bytes_)
            check(eager, eager.call)
            impls.append(eager)
            try:
                if backward:
                    graph = graph_impl("cuda graph", None, bytes_, graphed_backward(lambda: fn(xg, wg, bg), grad_of))
                else:
                    graph = graph_impl("cuda graph", make(fn), bytes_)

                def replay_out(g=graph):
                    g.graph.replay()
                    return g.out
                check(graph, replay_out)
                impls.append(graph)
            except Exception as e:  # noqa: BLE001
                graph = Impl("cuda graph", None, 1, bytes_)
                graph.error = f"CUDA graph failed: {type(e).__name__}: {e}".splitlines()[0][:300]
                add_row(c, mode, graph)
            compiled = None
            if cfg["compile"]:
                try:
                    torch._dynamo.reset()
                    if backward:
                        try:
                            # Donated buffers forbid retain_graph=True (torch >= 2.5).
                            import torch._functorch.config as functorch_config
                            functorch_config.donated_buffer = False
                        except (ImportError, AttributeError):
                            pass
                    compiled = Impl("torch.compile", make(torch.compile(fn, dynamic=False)), 1, bytes_)
                    check(compiled, compiled.call)
                    impls.append(compiled)
                except Exception as e:  # noqa: BLE001
                    compiled = Impl("torch.compile", None, 1, bytes_)
                    compiled.error = f"torch.compile failed: {type(e).__name__}: {e}".splitlines()[0][:300]
                    add_row(c, mode, compiled)

            src, dst = copy_impls(c, mode, impls, floats, n)
            time_interleaved(impls)
            for t in impls:
                add_row(c, mode, t)
            for t in impls:
                t.call = None
                if hasattr(t, "graph"):
                    del t.graph, t.out
            del impls, eager, graph, compiled, src, dst, ref
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        del x, dy, mean, invstd, xhat, xg, wg, bg, wrt
        torch.cuda.empty_cache()

    for c in cfg["cases"]:
        if c.get("norm"):
            # The family's code has not met every torch version: a case that fails is reported
            # in a row of its own, and the run goes on with the next case.
            measured = len(rows)
            try:
                family_case(c)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                # A mode's rows come after its timing, its copies among them: the first mode without is the one that failed.
                timed = {r["mode"] for r in rows[measured:] if r["impl"] == "copy_ eager"}
                failed = next((m for m in cfg["familyModes"] if m not in timed), None)
                if failed is not None:
                    t = Impl("eager", None, 1, 0)
                    t.error = f"failed: {type(e).__name__}: {e}".splitlines()[0][:300]
                    add_row(c, failed, t)
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
            continue
        layout, shape = c["layout"], list(c["shape"])
        axis = CHANNEL_AXIS[layout]
        C = shape[axis]
        n = math.prod(shape)
        perm = [0, axis] + [d for d in range(1, len(shape)) if d != axis]
        gen = torch.Generator(device=dev)
        gen.manual_seed(1)
        # Allocated in the case's layout, seen as (N, C, ...): NHWC is channels_last memory.
        x = (torch.randn(shape, generator=gen, device=dev) * 2 + 1).permute(perm)
        gen.manual_seed(2)
        dy = torch.randn(shape, generator=gen, device=dev).permute(perm)
        dims = [d for d in range(x.dim()) if d != 1]
        xd = x.double()
        mean = xd.mean(dims, keepdim=True)
        var = ((xd - mean) ** 2).mean(dims, keepdim=True)
        invstd = (var + eps).rsqrt()
        xhat = (xd - mean) * invstd
        mean32, var32 = mean.flatten().float(), var.flatten().float()
        rm, rv = mean32.clone(), var32.clone()
        w, b = torch.ones(C, device=dev), torch.zeros(C, device=dev)
        wg, bg = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        xg = x.detach().requires_grad_(True)

        def reset_running():
            rm.copy_(mean32)
            rv.copy_(var32)

        for mode in cfg["modes"]:
            backward = mode == "forward+backward"
            training = mode != "inference"
            if backward:
                dyd = dy.double()
                ref = invstd * (dyd - dyd.mean(dims, keepdim=True) - xhat * (dyd * xhat).mean(dims, keepdim=True))
                del dyd
            else:
                ref = xhat
            bytes_ = (5 if backward else 2) * n * 4

            def make(bn):
                if backward:
                    def fb():
                        y = bn(xg, rm, rv, wg, bg, True, momentum, eps)
                        return torch.autograd.grad(y, (xg, wg, bg), dy)[0]
                    return fb
                return lambda: bn(x, rm, rv, w, b, training, momentum, eps)

            def check(t, out_fn):
                reset_running()
                out = out_fn()
                torch.cuda.synchronize()
                t.max_error = float((out.double() - ref).abs().max())
                if math.isnan(t.max_error):
                    t.max_error = math.inf
                t.ok = t.max_error <= cfg["tolerance"]

            impls = []
            eager = Impl("eager", make(F.batch_norm), 1, bytes_)
            check(eager, eager.call)
            impls.append(eager)
            try:
                graph = graph_impl("cuda graph", make(F.batch_norm), bytes_)

                def replay_out(g=graph):
                    g.graph.replay()
                    return g.out
                check(graph, replay_out)
                impls.append(graph)
            except Exception as e:  # noqa: BLE001
                graph = Impl("cuda graph", None, 1, bytes_)
                graph.error = f"CUDA graph failed: {type(e).__name__}: {e}".splitlines()[0][:300]
                add_row(c, mode, graph)
            if cfg["compile"]:
                try:
                    torch._dynamo.reset()
                    compiled = Impl("torch.compile", make(torch.compile(F.batch_norm, dynamic=False)), 1, bytes_)
                    check(compiled, compiled.call)
                    impls.append(compiled)
                except Exception as e:  # noqa: BLE001
                    compiled = Impl("torch.compile", None, 1, bytes_)
                    compiled.error = f"torch.compile failed: {type(e).__name__}: {e}".splitlines()[0][:300]
                    add_row(c, mode, compiled)

            # PyTorch's device-to-device copy of the mode's compulsory bytes, as bench:node's copies.
            m = math.ceil((2.5 if backward else 1) * n / 4) * 4
            gen.manual_seed(3)
            src = torch.randn(m, generator=gen, device=dev)
            dst = torch.empty_like(src)
            copy_eager = Impl("copy_ eager", lambda: dst.copy_(src), 1, 2 * m * 4)
            impls.append(copy_eager)
            try:
                impls.append(graph_impl("copy_ graph", lambda: dst.copy_(src), 2 * m * 4))
            except Exception as e:  # noqa: BLE001
                progress(f"{case_name(c)} · {mode} · copy_ graph: failed: {e}")
            for t in impls:
                if t.name.startswith("copy"):
                    dst.zero_()
                    t.call()
                    torch.cuda.synchronize()
                    t.max_error = int((dst != src).sum())
                    t.ok = t.max_error == 0

            reset_running()
            time_interleaved(impls)
            for t in impls:
                add_row(c, mode, t)
            for t in impls:
                t.call = None
                if hasattr(t, "graph"):
                    del t.graph, t.out
            del impls, eager, graph, src, dst, ref
            if cfg["compile"]:
                del compiled
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        del x, dy, xd, mean, var, invstd, xhat, xg
        torch.cuda.empty_cache()


def main():
    try:
        cfg = read_config()
    except Exception as e:  # noqa: BLE001
        emit({"available": False, "reason": f"bad input: {e}"})
        return 2
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        emit({"available": False, "reason": f"no PyTorch for {os.path.basename(sys.executable)} ({type(e).__name__}: {e})"})
        return 0
    if not torch.cuda.is_available():
        emit({"available": False, "reason": f"torch {torch.__version__} finds no CUDA device"})
        return 0
    torch.backends.cudnn.benchmark = False
    info = {
        "available": True,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name(0),
    }
    progress(f"torch {info['torch']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}, {info['device']}")
    info["rows"] = []
    try:
        run(cfg, torch, info["rows"])
    except Exception as e:  # noqa: BLE001 -- report the rows measured so far
        import traceback
        traceback.print_exc()
        info["error"] = f"{type(e).__name__}: {e}"
    emit(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
