"""Time to accuracy of DDP communication hooks on a shaped link.

For every (model, W, link, hook) it trains torch_ext/examples/ddp_fashion_mnist.py with W gloo
ranks inside a private network namespace that it creates (`unshare -n`): the namespace's loopback
is rate-limited with tc tbf (rate R, burst 256 kb, latency 100 ms) unless the link is "unlimited",
all traffic stays on 127.0.0.1 in there (GLOO_SOCKET_IFNAME=lo), and the namespace disappears with
its processes (each run is bounded by --timeout). Same seeds, initialization and data order for
every hook. Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) for the namespace and tc.

    bazel run //bench:ddp_time_to_accuracy -- --out /tmp/tta.json --plot /tmp/tta.png

Reports per run: median step time, wire bytes per rank per step (loopback counters inside the
namespace), training seconds to the target test accuracy (probes of --eval-images test images every
--eval-every steps, clock stopped while probing), final test accuracy (all 10k images), and the
coset hook's own time per MB of gradient. Writes JSON, a markdown table, and a PNG of probe accuracy
against training seconds, one panel per (model, W, link), one line per hook.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import coset_torch

HERE = os.path.dirname(os.path.abspath(__file__))

LINKS = {"200mbit": "200mbit", "1gbit": "1gbit", "unlimited": None}
HOOKS = ["none", "fp16", "powersgd", "coset:reference", "coset:allgather", "coset:allreduce_codes",
         "coset:reduce_scatter"]


def example_dir():
    """torch_ext/examples, from Bazel runfiles or next to this file in a source tree."""
    for root in (os.environ.get("RUNFILES_DIR", ""), os.path.abspath(sys.argv[0]) + ".runfiles"):
        candidate = os.path.join(root, "coset", "torch_ext", "examples")
        if os.path.exists(os.path.join(candidate, "ddp_fashion_mnist.py")):
            return candidate
    return os.path.join(HERE, "..", "torch_ext", "examples")


def user_path(path):
    """Relative paths are the user's (bazel run changes the working directory)."""
    return path if os.path.isabs(path) else os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), path)


def run_one(args, model, world, link, hook):
    name, _, mode = hook.partition(":")
    cmd = [sys.executable, os.path.join(example_dir(), "ddp_fashion_mnist.py"), "--json", "--world-size", str(world),
           "--hook", name, "--model", model, "--epochs", str(args.epochs[model]), "--batch", str(args.batch[model]),
           "--eval-every", str(args.eval_every[model]), "--eval-images", str(args.eval_images),
           "--powersgd-rank", str(args.powersgd_rank), "--timeout", str(args.timeout)]
    if args.max_steps[model]:
        cmd += ["--max-steps", str(args.max_steps[model])]
    if mode:
        cmd += ["--mode", mode]
    shaping = f"tc qdisc add dev lo root tbf rate {LINKS[link]} burst 256kb latency 100ms && " if LINKS[link] else ""
    script = f"ip link set lo up && {shaping}exec {' '.join(shlex.quote(c) for c in cmd)}"
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", COSET_TORCH_LIBRARY=coset_torch.LIBRARY,
               PYTHONPATH=os.pathsep.join([example_dir(), os.path.dirname(os.path.dirname(coset_torch.__file__))]))
    start = time.time()
    try:
        out = subprocess.run(["unshare", "-n", "bash", "-c", script], capture_output=True, text=True, env=env,
                             timeout=args.timeout + 60)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout + 60} s"}
    if out.returncode != 0:
        return {"error": out.stderr.strip()[-800:]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["launch_seconds"] = time.time() - start
    return result


def time_to(result, target):
    for point in result.get("curve", []):
        if point["probe_accuracy"] >= target:
            return point["seconds"]
    return None


def table(runs, targets):
    lines = ["| model | W | link | hook | median step ms | MB/rank/step | s to target | train s | final acc | "
             "hook ms/MB (CPU) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        res = r["result"]
        if "error" in res:
            lines.append(f"| {r['model']} | {r['world']} | {r['link']} | {r['hook']} | error: "
                         f"{res['error'][:60]!r} |||||")
            continue
        tt = time_to(res, targets[r["model"]])
        hook = res.get("hook_stats", {})
        hook_ms = "-" if "hook_ms_per_mb" not in hook else f"{hook['hook_ms_per_mb']:.2f}"
        if "hook_cpu_ms_per_mb" in hook:
            hook_ms += f" ({hook['hook_cpu_ms_per_mb']:.2f})"
        lines.append(f"| {r['model']} | {r['world']} | {r['link']} | {r['hook']} | "
                     f"{1e3 * res['median_step_seconds']:.1f} | {res['grad_bytes_per_rank_per_step'] / 1e6:.3f} | "
                     f"{'-' if tt is None else f'{tt:.1f}'} | {res['train_seconds']:.1f} | "
                     f"{res['test_accuracy']:.4f} | {hook_ms} |")
    return "\n".join(lines)


def plot(runs, targets, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["model"], r["world"], r["link"]) for r in runs},
                    key=lambda p: (p[0], p[1], list(LINKS).index(p[2])))
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4 * rows), squeeze=False)
    for ax, (model, world, link) in zip(axes.flat, panels):
        for r in runs:
            if (r["model"], r["world"], r["link"]) != (model, world, link) or "error" in r["result"]:
                continue
            curve = r["result"]["curve"]
            ax.plot([0.0] + [p["seconds"] for p in curve], [0.1] + [p["probe_accuracy"] for p in curve],
                    marker=".", label=r["hook"])
        ax.axhline(targets[model], color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{model}, W = {world}, {link}")
        ax.set_xlabel("training seconds")
        ax.set_ylabel("test accuracy (probe)")
        ax.set_ylim(0.5, 0.92)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def per_model(text, cast):
    """'mlp=2,wide=1' -> {'mlp': 2, 'wide': 1}; a bare value applies to every model."""
    if "=" not in text:
        return {m: cast(text) for m in ("mlp", "wide", "cnn")}
    return {k: cast(v) for k, v in (item.split("=") for item in text.split(","))}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mlp,wide")
    p.add_argument("--worlds", default="2,4")
    p.add_argument("--links", default="200mbit,1gbit,unlimited")
    p.add_argument("--hooks", default=",".join(HOOKS))
    p.add_argument("--epochs", default="mlp=2,wide=1")
    p.add_argument("--max-steps", default="mlp=0,wide=40", help="per model; 0 = whole epochs")
    p.add_argument("--batch", default="mlp=64,wide=128", help="per rank")
    p.add_argument("--eval-every", default="mlp=25,wide=5")
    p.add_argument("--eval-images", type=int, default=2000)
    p.add_argument("--target", default="mlp=0.84,wide=0.80", help="probe test accuracy to reach")
    p.add_argument("--powersgd-rank", type=int, default=2)
    p.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    p.add_argument("--out", default="ddp_time_to_accuracy.json")
    p.add_argument("--plot", default="ddp_time_to_accuracy.png")
    args = p.parse_args()
    args.epochs, args.max_steps = per_model(args.epochs, int), per_model(args.max_steps, int)
    args.batch, args.eval_every = per_model(args.batch, int), per_model(args.eval_every, int)
    targets = per_model(args.target, float)
    runs = []
    out_path, plot_path = user_path(args.out), user_path(args.plot)
    for model in args.models.split(","):
        for world in (int(w) for w in args.worlds.split(",")):
            for link in args.links.split(","):
                for hook in args.hooks.split(","):
                    result = run_one(args, model, world, link, hook)
                    runs.append({"model": model, "world": world, "link": link, "hook": hook, "result": result})
                    print(table(runs[-1:], targets).splitlines()[-1], flush=True)
                    with open(out_path, "w") as f:  # after every run: a long sweep keeps what it measured
                        json.dump({"targets": targets, "args": vars(args), "runs": runs}, f, indent=1)
    print(table(runs, targets))
    plot(runs, targets, plot_path)
    print(f"wrote {out_path} and {plot_path}")


if __name__ == "__main__":
    sys.exit(main())
