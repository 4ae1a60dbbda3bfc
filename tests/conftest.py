"""Shared fixtures. Random parameters and XLA programs are cached under .cache/ in the checkout."""

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("FOLDFLOW_CACHE_DIR", str(ROOT / ".cache" / "foldflow"))
# Tests never write into the user's store (`make demo`'s runs): runs that name no store go to one of this
# test process's own. The parameter and XLA caches in FOLDFLOW_CACHE_DIR are shared.
USER_STORE = Path(os.environ.get("FOLDFLOW_STORE") or Path(os.environ["FOLDFLOW_CACHE_DIR"]) / "store")
TEST_STORE = tempfile.mkdtemp(prefix="foldflow-test-store-")  # removed when the session ends
os.environ["FOLDFLOW_STORE"] = TEST_STORE

import pytest  # noqa: E402

from foldflow.config import ModelConfig, RunConfig  # noqa: E402

DATA = Path(__file__).parent / "data"
DEMO_FASTA = ROOT / "examples" / "demo.fasta"
SHORT_SEQUENCE = (DATA / "short.fasta").read_text().split("\n", 1)[1].replace("\n", "")
FOUR_TARGETS_IN_FLIGHT = 2


def debian_binary(name: str, package: str) -> str:
    """The path of a reference binary; the test fails (not skips) without it: `make test` installs it."""
    binary = shutil.which(name)
    if binary is None:
        pytest.fail(f"the {name} binary (Debian package {package}) is needed: `make test` installs it")
    return binary


def load_script(name: str):
    """``scripts/<name>.py`` imported as a module (registered in sys.modules: dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def small_model_config(**overrides) -> ModelConfig:
    """Cheapest meaningful AlphaFold setting for CPU tests: shallow MSA, no recycling, two buckets."""
    settings = dict(num_recycle=0, max_msa_clusters=8, max_extra_msa=16, bucket_lengths=[64, 96])
    return ModelConfig(**{**settings, **overrides})


def small_run_config(store, **pipeline) -> RunConfig:
    """Monomer tests: no relaxation (tests/test_alphafold_run.py relaxes), templates as by default."""
    return RunConfig(store=str(store), model=small_model_config(), relax={"models_to_relax": "none"},
                     pipeline={"progress": False, **pipeline})


def prepare(msa, target):
    """The MSA pool's steps for one target, in order, on ``msa`` (a :class:`~foldflow.flow.workers.MsaResident`):
    each distinct chain's alignments and templates, then the features. Returns (what the records say,
    the features step's record, the features)."""
    from foldflow.flow import workers
    from foldflow.stages import Preparation

    worker = workers.Worker(msa)
    chains = list(target.distinct_chains)
    aligned = {c: worker.run(workers.align, workers.StepJob(target, c))[0] for c in chains}
    templates, template_features = {}, []
    if msa.templates is not None:
        for c in chains:
            templates[c], arrays = worker.run(workers.search_templates, workers.StepJob(target, c, {"align": aligned[c]}))
            template_features.append(arrays)
    inputs = {"align": aligned, **({"templates": templates} if templates else {})}
    built, features = worker.run(workers.make_features, workers.StepJob(target, None, inputs), *template_features)
    return Preparation.of(target, aligned, templates, built), built.record, features


# What a test module not marked ray gets as RAY_ADDRESS (inherited by the processes it starts): foldflow
# would join that cluster (PipelineConfig.cluster_address), and ray.init rejects the address at once.
NO_RAY_ADDRESS = "no-ray-in-a-module-not-marked-ray"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """``make test`` runs two pytest-xdist workers (``-n 2 --dist loadgroup``); every module is a group of its own,
    so its module-scoped fixtures are computed once. A module that starts a Ray (marked ``ray``) starts a local
    Ray of its own (``ray.init(address="local")``: its ports are the system's free ones), so the two workers'
    Rays run side by side; the modules that start ``ray start`` heads or multi-node clusters share the group
    ``ray-heads`` (tests/ray_head.py) and run one after another."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    items.sort(key=lambda item: item.path.name == IMAGE_TESTS)  # last: the images build meanwhile


IMAGE_TESTS = "test_images.py"


def start_image_builds(config: pytest.Config) -> None:
    """Build the images (scripts/images.py) in the background from the session's start: their downloads and
    layers overlap the other tests, and tests/test_images.py, which runs last, waits for the build's lock and
    finds every layer built (a build that failed fails there again, with its error). Once per session: the
    pytest-xdist workers share its run id; the log is .cache/images/build-<run id>.log."""
    run = getattr(config, "workerinput", {}).get("testrunuid", f"pid{os.getpid()}")
    images = load_script("images")
    images.CACHE.mkdir(parents=True, exist_ok=True)
    try:
        log = open(images.CACHE / f"build-{run}.log", "x")
    except FileExistsError:
        return
    for old in images.CACHE.glob("build-*.log"):
        if old.name != Path(log.name).name:
            old.unlink()
    with log:
        subprocess.Popen([sys.executable, str(ROOT / "scripts" / "images.py")], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)


def pytest_collection_finish(session):
    """Fail at once when pytest-xdist did not group the tests (it appends ``@group`` to each node id); start the
    images' build when the image tests are selected."""
    if getattr(session.config.option, "loadgroup", False) and any("@" not in i.nodeid for i in session.items):
        raise pytest.UsageError("pytest-xdist did not group the tests (--dist loadgroup); see pyproject.toml on pytest")
    if not session.config.option.collectonly and any(item.path.name == IMAGE_TESTS for item in session.items):
        start_image_builds(session.config)


def _user_runs() -> set[str]:
    runs = USER_STORE / "runs"
    return {p.name for p in runs.iterdir()} if runs.is_dir() else set()


@pytest.fixture(scope="session", autouse=True)
def users_store_untouched():
    """The suite fails if a run appeared in the user's store while it ran; the tests' own store goes."""
    before = _user_runs()
    yield
    shutil.rmtree(TEST_STORE, ignore_errors=True)
    assert _user_runs() <= before, f"tests wrote runs into the user's store {USER_STORE}"


@pytest.fixture(scope="module", autouse=True)
def no_ray_unless_marked(request):
    """A module not marked ``ray`` that starts a Ray fails, so no Ray starts unmarked."""
    if request.node.get_closest_marker("ray") is not None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_ADDRESS", NO_RAY_ADDRESS)
        yield


@pytest.fixture
def write_fasta(tmp_path):
    def write(text: str | bytes, name: str = "input.fasta") -> Path:
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return write


def four_targets(folder: Path) -> Path:
    """Three proteome proteins and a short one (precomputed MSAs copied to ``folder/msas``) as a FASTA file."""
    records = DEMO_FASTA.read_text().split(">")[1:4]
    fasta = folder / "targets.fasta"
    fasta.write_text("".join(">" + r for r in records) + f">short\n{SHORT_SEQUENCE}\n")
    shutil.copytree(DATA / "msas", folder / "msas", dirs_exist_ok=True)
    return fasta


@pytest.fixture(scope="session")
def four_targets_run(tmp_path_factory):
    """The four targets predicted once on a local Ray (searched against the mini databases, one with
    precomputed MSAs), run id "reference": tests/test_pipeline.py checks it, tests/test_runs.py compares
    interrupted runs with it and starts from a copy of its store."""
    import foldflow

    work = tmp_path_factory.mktemp("four_targets")
    config = small_run_config(work / "store", max_in_flight=FOUR_TARGETS_IN_FLIGHT)
    config.msa.precomputed_dir = work / "msas"
    return foldflow.predict(four_targets(work), work / "out", config, run_id="reference")
