"""AlphaFold 2.3's template search and template features: hmmsearch with pyhmmer, or hhsearch (HH-suite).

AlphaFold 2.3 (``pipeline.DataPipeline`` with ``tools.hmmsearch.Hmmsearch``)
deduplicates the query's uniref90 jackhmmer MSA and drops its empty columns,
builds an HMM with ``hmmbuild --hand --amino``, searches PDB seqres with
``hmmsearch --noali --cpu 8 --F1 0.1 --F2 0.1 --F3 0.1 --incE 100 -E 100
--domE 100 --incdomE 100 -A out.sto``, parses the ``-A`` Stockholm into hits
and featurises them from mmCIF files with ``templates.HmmsearchHitFeaturizer``.

:class:`ResidentSeqres` does the search with pyhmmer against the seqres FASTA
read once and kept in memory; its Stockholm equals the binary's ``-A`` output
(HMMER 3.3.2) but for the ``#=GF AU`` line. Parsing and featurisation are
AlphaFold's own code, unchanged, with these differences in the hits it is given:

:class:`HHsearchPdb70` is the other searcher AlphaFold's pipeline takes: the same uniref90 MSA as A3M
through AlphaFold's ``tools.hhsearch.HHSearch`` (``hhsearch -maxseq 1000000``) against a PDB70 database,
hits parsed by ``parse_hhr`` and featurised by ``templates.HhsearchHitFeaturizer``.

* hits whose mmCIF file is not in ``mmcif_dir`` are skipped (AlphaFold raises
  ``FileNotFoundError``; a partial mirror such as the bundled one needs this);
* DeepMind's AlphaFold 2.3 rejects hits with at most 10 % of the query aligned,
  fewer than 10 template residues, or a template that is an exact subsequence of
  the query covering over 95 % of it; the ``alphafold-colabfold`` fork dropped
  these checks from ``templates._assess_hhsearch_hit``. With
  ``TemplateConfig.deepmind_prefilter`` (the default) foldflow applies them;
* hits carry ``sum_probs=0`` instead of ``None``: AlphaFold stores 0 for None and
  keeps the order of equal values, but its error message for a hit it cannot
  featurise formats ``None`` with ``%.2f`` and raises ``TypeError`` (AlphaFold
  2.3 as released); with 0 the hit is skipped as intended.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
from pathlib import Path

import pyhmmer
from alphafold.data import parsers, templates
from pyhmmer.easel import Alphabet, DigitalSequenceBlock, MSAFile, SequenceFile
from alphafold.data.tools.hhsearch import HHSearch
from pyhmmer.plan7 import Background, Builder, TopHits

from foldflow.config import TemplateConfig
from foldflow.features import FeatureDict
from foldflow.msa.hhblits import PDB70_SUFFIXES
from foldflow.msa.tools import ToolError, find_binary, version_line

log = logging.getLogger(__name__)

_ALPHABET = Alphabet.amino()
# tools/hmmsearch.py's default flags (--F1/--F2/--F3 0.1, -E/--incE/--domE/--incdomE 100).
HMMSEARCH_THRESHOLDS = dict(F1=0.1, F2=0.1, F3=0.1, E=100.0, incE=100.0, domE=100.0, incdomE=100.0)
# hmmbuild names the HMM after the MSA file when the MSA has none; AlphaFold writes query.msa.
_HMM_NAME = "query"
# DeepMind AlphaFold 2.3 templates._assess_hhsearch_hit: min_align_ratio, the minimum length and
# max_subsequence_ratio (a duplicate of the query).
_MIN_ALIGN_RATIO = 0.1
_MIN_TEMPLATE_LENGTH = 10
_MAX_SUBSEQUENCE_RATIO = 0.95


def hmmsearch_version() -> str:
    return pyhmmer.__version__


def _template_msa(uniref90_sto: str) -> str:
    """The uniref90 MSA as AlphaFold's pipeline hands it to the template searcher."""
    return parsers.remove_empty_columns_from_stockholm_msa(parsers.deduplicate_stockholm_msa(uniref90_sto))


def _build_hmm(msa_sto: str) -> pyhmmer.plan7.HMM:
    """``hmmbuild --hand --amino``: match columns from the MSA's ``#=GC RF`` line."""
    with MSAFile(io.BytesIO(msa_sto.encode()), format="stockholm", digital=True, alphabet=_ALPHABET) as handle:
        msa = handle.read()
    msa.name = msa.name or _HMM_NAME
    hmm, _, _ = Builder(_ALPHABET, architecture="hand").build_msa(msa, Background(_ALPHABET))
    return hmm


def _stockholm(hits: TopHits, name: str) -> str:
    """hmmsearch's ``-A`` file: included domains, every consensus column; empty when none."""
    if not hits.included:
        return ""
    msa = hits.to_msa(_ALPHABET, all_consensus_cols=True)
    msa.name = name
    buffer = io.BytesIO()
    msa.write(buffer, "stockholm")
    return buffer.getvalue().decode()


class ResidentSeqres:
    """PDB seqres FASTA read once (digital, in memory); :meth:`search` is AlphaFold's hmmsearch."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._sequences: DigitalSequenceBlock | None = None

    @property
    def sequences(self) -> DigitalSequenceBlock:
        if self._sequences is None:
            if not self.path.is_file():
                raise FileNotFoundError(f"PDB seqres database: no such file {self.path}")
            with SequenceFile(str(self.path), digital=True, alphabet=_ALPHABET) as handle:
                self._sequences = handle.read_block()
        return self._sequences

    def hits(self, uniref90_sto: str) -> TopHits:
        """hmmsearch hits (with E-values) for the HMM of the query's uniref90 MSA."""
        hmm = _build_hmm(_template_msa(uniref90_sto))
        (hits,) = pyhmmer.hmmer.hmmsearch([hmm], self.sequences, cpus=1, **HMMSEARCH_THRESHOLDS)
        return hits

    def search(self, uniref90_sto: str) -> str:
        """Stockholm text as ``hmmsearch -A`` writes it (what ``Hmmsearch.query`` returns)."""
        return _stockholm(self.hits(uniref90_sto), _HMM_NAME)

    # the searcher interface of TemplateSearch
    hits_file = "pdb_hits.sto"
    featurizer = templates.HmmsearchHitFeaturizer

    @property
    def version(self) -> str:
        return hmmsearch_version()

    def warm(self) -> None:
        self.sequences  # read the seqres now, before the first target needs it

    def parse(self, hits: str, query_sequence: str) -> list[parsers.TemplateHit]:
        return template_hits(hits, query_sequence)

    def setup_problem(self) -> str | None:
        return None if self.path.is_file() else f"no PDB seqres file {self.path}"


class HHsearchPdb70:
    """AlphaFold's hhsearch of PDB70 with the uniref90 MSA (deduplicated, empty columns dropped, as A3M)."""

    hits_file = "pdb_hits.hhr"
    featurizer = templates.HhsearchHitFeaturizer

    def __init__(self, database: Path, binary: str):
        self.database = Path(database)
        self.binary_name = binary

    @functools.cached_property
    def binary(self) -> str:
        return find_binary(self.binary_name, "msa.templates.hhsearch_binary")

    @functools.cached_property
    def version(self) -> str:
        return version_line([self.binary, "-h"], "HHsearch")

    def warm(self) -> None:
        """hhsearch is a process per query; the database stays in the page cache between them."""

    def search(self, uniref90_sto: str) -> str:
        """The .hhr text ``HHSearch.query`` returns."""
        a3m = parsers.convert_stockholm_to_a3m(_template_msa(uniref90_sto))
        return HHSearch(binary_path=self.binary, databases=[str(self.database)]).query(a3m)

    def parse(self, hits: str, query_sequence: str) -> list[parsers.TemplateHit]:
        return list(parsers.parse_hhr(hits))

    def setup_problem(self) -> str | None:
        try:
            self.binary
        except ToolError as error:
            return str(error)
        if missing := [suffix for suffix in PDB70_SUFFIXES if not Path(f"{self.database}{suffix}").is_file()]:
            return (f"no PDB70 database at {self.database} (missing {self.database.name}{missing[0]}; build one "
                    f"with: foldflow databases build hhsearch PDB_SEQRES_FASTA {self.database})")
        return None


def template_hits(hmmsearch_sto: str, query_sequence: str) -> list[parsers.TemplateHit]:
    """AlphaFold's ``Hmmsearch.get_template_hits``: Stockholm to A3M, then ``parse_hmmsearch_a3m``."""
    a3m = parsers.convert_stockholm_to_a3m(hmmsearch_sto, remove_first_row_gaps=False)
    return list(parsers.parse_hmmsearch_a3m(query_sequence=query_sequence, a3m_string=a3m, skip_first=False))


def _featurizer(mmcif_dir: Path, settings: TemplateConfig,
                kind: type[templates.TemplateHitFeaturizer]) -> templates.TemplateHitFeaturizer:
    """AlphaFold 2.3's featurizer with ``settings`` (no release-date file), built once per directory, settings
    and kind (it globs the directory and reads the obsolete list)."""
    return _cached_featurizer(mmcif_dir, settings.max_template_date, settings.max_hits, settings.kalign_binary,
                              settings.obsolete_pdbs, kind)


@functools.lru_cache(maxsize=4)
def _cached_featurizer(mmcif_dir: Path, max_template_date: str, max_hits: int, kalign: str, obsolete: Path | None,
                       kind: type[templates.TemplateHitFeaturizer]) -> templates.TemplateHitFeaturizer:
    return kind(mmcif_dir=str(mmcif_dir), max_template_date=max_template_date, max_hits=max_hits,
                kalign_binary_path=kalign, release_dates_path=None,
                obsolete_pdbs_path=str(obsolete) if obsolete else None)


def _has_structure(hit: parsers.TemplateHit, mmcif_dir: Path, obsolete: dict[str, str | None]) -> bool:
    """Whether the featurizer finds the mmCIF file it reads for ``hit`` (or skips the hit as obsolete)."""
    pdb_id, _ = templates._get_pdb_id_and_chain(hit)
    if pdb_id in obsolete:
        pdb_id = obsolete[pdb_id]
        if pdb_id is None:
            return True
    return (mmcif_dir / f"{pdb_id}.cif").is_file()


def _passes_deepmind_prefilter(hit: parsers.TemplateHit, query_sequence: str) -> bool:
    """DeepMind's align-ratio, length and duplicate checks (``templates._assess_hhsearch_hit``)."""
    template = hit.hit_sequence.replace("-", "")
    duplicate = template in query_sequence and len(template) / len(query_sequence) > _MAX_SUBSEQUENCE_RATIO
    return (hit.aligned_cols / len(query_sequence) > _MIN_ALIGN_RATIO and not duplicate
            and len(template) >= _MIN_TEMPLATE_LENGTH)


def template_features(query_sequence: str, hmmsearch_sto: str, mmcif_dir: Path,
                      settings: TemplateConfig) -> tuple[FeatureDict, int]:
    """AlphaFold's template features of hmmsearch hits and the number of templates found."""
    return featurise_hits(query_sequence, template_hits(hmmsearch_sto, query_sequence), mmcif_dir, settings,
                          templates.HmmsearchHitFeaturizer)


def featurise_hits(query_sequence: str, hits: list[parsers.TemplateHit], mmcif_dir: Path,
                   settings: TemplateConfig,
                   kind: type[templates.TemplateHitFeaturizer]) -> tuple[FeatureDict, int]:
    """AlphaFold's template features and the number of templates found.

    With none found the features are the featurizer's own single all-zero template (what AlphaFold 2.3
    feeds the model) and the count is 0.
    """
    mmcif_dir = Path(mmcif_dir)
    featurizer = _featurizer(mmcif_dir, settings, kind)
    # sum_probs 0 instead of None (hmmsearch hits): the same order and features (AlphaFold writes 0 for
    # None), but a hit that fails featurisation is reported instead of crashing AlphaFold's "%.2f" message.
    hits = [dataclasses.replace(hit, sum_probs=hit.sum_probs or 0.0) for hit in hits
            if _has_structure(hit, mmcif_dir, featurizer._obsolete_pdbs)
            and (not settings.deepmind_prefilter or _passes_deepmind_prefilter(hit, query_sequence))]
    result = featurizer.get_templates(query_sequence=query_sequence, hits=hits)
    for message in (*result.errors, *result.warnings):
        log.info("template featurisation: %s", message)
    features = dict(result.features)
    return features, sum(1 for name in features["template_domain_names"] if name)


class TemplateSearch:
    """One template search (hmmsearch with the PDB seqres resident, or hhsearch of PDB70), hits featurised
    from the mmCIF folder."""

    def __init__(self, config: TemplateConfig, engine: str | None = None):
        """``engine``: hmmsearch or hhsearch (default: the config's, which must not be ``alphafold``)."""
        self.config = config
        self.engine = engine or config.engine
        self.searcher = (HHsearchPdb70(config.pdb70, config.hhsearch_binary) if self.engine == "hhsearch"
                         else ResidentSeqres(config.pdb_seqres))

    @property
    def version(self) -> str:
        return self.searcher.version

    @property
    def hits_file(self) -> str:
        """AlphaFold's name for the hits under msas/: pdb_hits.sto (hmmsearch) or pdb_hits.hhr (hhsearch)."""
        return self.searcher.hits_file

    def warm(self) -> None:
        self.searcher.warm()

    def setup_problem(self) -> str | None:
        """What is missing on this machine (one line), None when the search can run."""
        if problem := self.searcher.setup_problem():
            return problem
        return None if self.config.mmcif_dir.is_dir() else f"no mmCIF folder {self.config.mmcif_dir}"

    def search(self, uniref90_sto: str) -> str:
        return self.searcher.search(uniref90_sto)

    def featurise(self, sequence: str, hits: str) -> tuple[FeatureDict, int]:
        return featurise_hits(sequence, self.searcher.parse(hits, sequence), self.config.mmcif_dir, self.config,
                              self.searcher.featurizer)


def template_searches(config: TemplateConfig) -> dict[bool, TemplateSearch]:
    """The search for monomers (False) and for complexes (True): one object where both use the same."""
    by_engine = {engine: TemplateSearch(config, engine) for engine in {config.engine_for(c) for c in (False, True)}}
    return {is_complex: by_engine[config.engine_for(is_complex)] for is_complex in (False, True)}
