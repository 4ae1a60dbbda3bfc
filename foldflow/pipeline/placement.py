"""Where a pool's Ray actors may go: their options (CPUs, GPUs, custom resources, node labels, memory), and the
check that a Ray whose nodes are fixed can hold one of them."""

from __future__ import annotations

from foldflow.errors import FoldflowError


def placement_options(cpus: float, gpus: float = 0.0, resources: dict[str, float] | None = None,
                      labels: dict[str, str] | None = None, memory_gb: float | None = None) -> dict:
    """Ray actor options for one stage's placement."""
    options: dict = {"num_cpus": cpus}
    if gpus:
        options["num_gpus"] = gpus
    if resources:
        options["resources"] = dict(resources)
    if labels:
        options["label_selector"] = dict(labels)
    if memory_gb:
        options["memory"] = int(memory_gb * 2**30)
    return options


class UnplaceableStageError(FoldflowError, ValueError):
    """No node of a Ray that cannot grow offers what one actor of a stage asks for."""


def check_placeable(stage: str, options: dict, nodes: list[dict]) -> None:
    """Raise when no alive node can ever hold one actor with these ``placement_options``.

    Only for a Ray whose nodes are fixed (the local one foldflow starts): on a
    cluster the autoscaler may still add a node that fits.
    """
    wanted = {"CPU": options.get("num_cpus", 0), "GPU": options.get("num_gpus", 0),
              "memory": options.get("memory", 0), **options.get("resources", {})}
    wanted = {name: amount for name, amount in wanted.items() if amount}
    labels = options.get("label_selector", {})
    for node in (n for n in nodes if n["Alive"]):
        have = node["Resources"]
        if all(have.get(name, 0) >= amount for name, amount in wanted.items()) \
                and all(node.get("Labels", {}).get(key) == value for key, value in labels.items()):
            return

    def amount(name: str, value: float) -> str:
        return f"memory {value / 2**30:.1f} GiB" if name == "memory" else f"{name} {value:g}"

    asked = ", ".join(amount(name, value) for name, value in wanted.items())
    asked += "".join(f", label {key}={value}" for key, value in labels.items())
    offered = "; ".join(", ".join(amount(name, value) for name, value in sorted(n["Resources"].items())
                                  if name in ("CPU", "GPU") or name in wanted) or "nothing asked for"
                        for n in nodes if n["Alive"])
    raise UnplaceableStageError(
        f"{stage} actors ask for {asked}, but no node of this local Ray offers that (it has: {offered}); "
        f"change pipeline.{stage.lower()}_actor_* in the config, or run on a cluster with --address")
