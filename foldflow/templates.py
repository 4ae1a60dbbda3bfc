"""AlphaFold 2.3's template search and template features, with pyhmmer instead of the HMMER binaries.

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

* hits whose mmCIF file is not in ``mmcif_dir`` are skipped (AlphaFold raises
  ``FileNotFoundError``; a partial mirror such as the bundled one needs this);
* DeepMind's AlphaFold 2.3 rejects hits with at most 10 % of the query aligned
  or fewer than 10 template residues; the ``alphafold-colabfold`` fork dropped
  these checks from ``templates._assess_hhsearch_hit``. With
  ``TemplateSettings.deepmind_prefilter`` (the default) foldflow applies them;
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
from pyhmmer.plan7 import Background, Builder, TopHits

from foldflow.config import TemplateConfig
from foldflow.features import FeatureDict

log = logging.getLogger(__name__)

_ALPHABET = Alphabet.amino()
# tools/hmmsearch.py's default flags (--F1/--F2/--F3 0.1, -E/--incE/--domE/--incdomE 100).
HMMSEARCH_THRESHOLDS = dict(F1=0.1, F2=0.1, F3=0.1, E=100.0, incE=100.0, domE=100.0, incdomE=100.0)
# hmmbuild names the HMM after the MSA file when the MSA has none; AlphaFold writes query.msa.
_HMM_NAME = "query"
# DeepMind AlphaFold 2.3 templates._assess_hhsearch_hit: min_align_ratio and the minimum length.
_MIN_ALIGN_RATIO = 0.1
_MIN_TEMPLATE_LENGTH = 10


@dataclasses.dataclass(frozen=True)
class TemplateSettings:
    """``templates.HmmsearchHitFeaturizer``'s settings (AlphaFold 2.3: 20 hits, no release-date file)."""

    max_template_date: str  # YYYY-MM-DD; templates released after it are skipped
    max_hits: int = 20
    obsolete_pdbs_path: Path | None = None
    kalign: str = "kalign"  # realigns a hit whose seqres differs from its mmCIF sequence
    deepmind_prefilter: bool = True


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


def template_hits(hmmsearch_sto: str, query_sequence: str) -> list[parsers.TemplateHit]:
    """AlphaFold's ``Hmmsearch.get_template_hits``: Stockholm to A3M, then ``parse_hmmsearch_a3m``."""
    a3m = parsers.convert_stockholm_to_a3m(hmmsearch_sto, remove_first_row_gaps=False)
    return list(parsers.parse_hmmsearch_a3m(query_sequence=query_sequence, a3m_string=a3m, skip_first=False))


@functools.lru_cache(maxsize=4)
def _featurizer(mmcif_dir: Path, settings: TemplateSettings) -> templates.HmmsearchHitFeaturizer:
    """Built once per directory and settings (it globs the directory and reads the obsolete list)."""
    return templates.HmmsearchHitFeaturizer(
        mmcif_dir=str(mmcif_dir), max_template_date=settings.max_template_date, max_hits=settings.max_hits,
        kalign_binary_path=settings.kalign, release_dates_path=None,
        obsolete_pdbs_path=str(settings.obsolete_pdbs_path) if settings.obsolete_pdbs_path else None)


def _has_structure(hit: parsers.TemplateHit, mmcif_dir: Path, obsolete: dict[str, str | None]) -> bool:
    """Whether the featurizer finds the mmCIF file it reads for ``hit`` (or skips the hit as obsolete)."""
    pdb_id, _ = templates._get_pdb_id_and_chain(hit)
    if pdb_id in obsolete:
        pdb_id = obsolete[pdb_id]
        if pdb_id is None:
            return True
    return (mmcif_dir / f"{pdb_id}.cif").is_file()


def _passes_deepmind_prefilter(hit: parsers.TemplateHit, query_sequence: str) -> bool:
    """DeepMind's align-ratio and length checks (its duplicate check never fires for hmmsearch hits)."""
    return (hit.aligned_cols / len(query_sequence) > _MIN_ALIGN_RATIO
            and len(hit.hit_sequence.replace("-", "")) >= _MIN_TEMPLATE_LENGTH)


def template_features(query_sequence: str, hmmsearch_sto: str, mmcif_dir: Path,
                      settings: TemplateSettings) -> tuple[FeatureDict, int]:
    """AlphaFold's template features and the number of templates found.

    With none found the features are ``HmmsearchHitFeaturizer``'s own single
    all-zero template (what AlphaFold 2.3 feeds the model) and the count is 0.
    """
    mmcif_dir = Path(mmcif_dir)
    featurizer = _featurizer(mmcif_dir, settings)
    # sum_probs 0 instead of None: the same order and features (AlphaFold writes 0 for None), but a
    # hit that fails featurisation is reported instead of crashing AlphaFold's "%.2f" error message.
    hits = [dataclasses.replace(hit, sum_probs=0.0) for hit in template_hits(hmmsearch_sto, query_sequence)
            if _has_structure(hit, mmcif_dir, featurizer._obsolete_pdbs)
            and (not settings.deepmind_prefilter or _passes_deepmind_prefilter(hit, query_sequence))]
    result = featurizer.get_templates(query_sequence=query_sequence, hits=hits)
    for message in (*result.errors, *result.warnings):
        log.info("template featurisation: %s", message)
    features = dict(result.features)
    return features, sum(1 for name in features["template_domain_names"] if name)


class TemplateSearch:
    """A run's template search: the PDB seqres resident, hits featurised from the mmCIF folder."""

    def __init__(self, config: TemplateConfig):
        self.config = config
        self.seqres = ResidentSeqres(config.pdb_seqres)
        self.settings = TemplateSettings(max_template_date=config.max_template_date, max_hits=config.max_hits,
                                         obsolete_pdbs_path=config.obsolete_pdbs)

    @property
    def version(self) -> str:
        return hmmsearch_version()

    def warm(self) -> None:
        self.seqres.sequences  # read the seqres now, before the first target needs it

    def search(self, uniref90_sto: str) -> str:
        return self.seqres.search(uniref90_sto)

    def featurise(self, sequence: str, hits_sto: str) -> tuple[FeatureDict, int]:
        return template_features(sequence, hits_sto, self.config.mmcif_dir, self.settings)
