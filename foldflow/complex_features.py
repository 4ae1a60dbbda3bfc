"""AlphaFold-Multimer input features of a complex, from each chain's alignments (numpy only).

The steps are those of ``alphafold.data.pipeline_multimer.DataPipeline.process``, each done by
``alphafold.data``'s own function, from alignments already in hand (no search): chain ids A, B, ...;
each distinct sequence's monomer features (:func:`foldflow.features.build_features`, AlphaFold's
monomer DataPipeline on the same MSAs), a repeated sequence getting a copy of its first chain's;
UniProt pairing features (``*_all_seq``) only when the complex has more than one distinct sequence;
``convert_monomer_features``, ``add_assembly_features``, ``pair_and_merge`` and ``pad_msa(.., 512)``.

``deduplicate`` applies to the pairing MSA as to the monomer MSAs (see :mod:`foldflow.features`):
True gives DeepMind AlphaFold 2.3's features, False those of the ``alphafold-colabfold`` fork.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from alphafold.data import feature_processing, msa_pairing, parsers, pipeline, pipeline_multimer

from foldflow.features import FeatureDict, build_features, deduplicate_msas
from foldflow.alignment import Alignment

# pad_msa's minimum MSA depth in DataPipeline.process ("to avoid zero-sized extra_msa").
MIN_MSA_ROWS = 512


@dataclass(frozen=True)
class ChainInput:
    """One chain of a complex, with what AlphaFold's multimer pipeline would have searched for it."""

    sequence: str
    description: str
    alignments: Sequence[Alignment] = ()  # the chain's monomer MSAs (uniref90, bfd/small_bfd, mgnify)
    pairing: Alignment | None = None  # UniProt hits for species pairing (None: the query alone)
    templates: FeatureDict | None = None  # monomer-layout template features (None: no templates)


def pairing_features(sequence: str, pairing: Alignment | None, deduplicate: bool = True,
                     max_uniprot_hits: int = 50000) -> FeatureDict:
    """``DataPipeline._all_seq_msa_features``: the pairing MSA's features with an ``_all_seq`` suffix.

    With no pairing alignment the MSA is the query alone, as jackhmmer's output is when UniProt has no hit.
    """
    if pairing is None:
        msa = parsers.Msa(sequences=[sequence], deletion_matrix=[[0] * len(sequence)], descriptions=["query"])
    else:
        msa = pairing.parse()
    msas = [msa.truncate(max_seqs=max_uniprot_hits)]
    if deduplicate:
        msas = deduplicate_msas(msas)
    features = pipeline.make_msa_features(msas)
    kept = msa_pairing.MSA_FEATURES + ("msa_species_identifiers",)
    return {f"{name}_all_seq": value for name, value in features.items() if name in kept}


def build_complex_features(chains: Sequence[ChainInput], deduplicate: bool = True,
                           max_uniprot_hits: int = 50000) -> FeatureDict:
    """The multimer model's raw input features for ``chains`` (in order: chain A, B, ...)."""
    chain_id_map = pipeline_multimer._make_chain_id_map(
        sequences=[chain.sequence for chain in chains], descriptions=[chain.description for chain in chains])
    is_homomer_or_monomer = len({chain.sequence for chain in chains}) == 1
    all_chain_features: dict[str, FeatureDict] = {}
    by_sequence: dict[str, FeatureDict] = {}
    for chain_id, chain in zip(chain_id_map, chains):
        if chain.sequence in by_sequence:
            all_chain_features[chain_id] = copy.deepcopy(by_sequence[chain.sequence])
            continue
        # the monomer pipeline reads the chain from a FASTA named chain_<id>: that is its domain_name
        features = build_features(chain.sequence, f"chain_{chain_id}", chain.alignments, deduplicate,
                                  chain.templates)
        if not is_homomer_or_monomer:
            features.update(pairing_features(chain.sequence, chain.pairing, deduplicate, max_uniprot_hits))
        features = pipeline_multimer.convert_monomer_features(features, chain_id=chain_id)
        all_chain_features[chain_id] = by_sequence[chain.sequence] = features
    all_chain_features = pipeline_multimer.add_assembly_features(all_chain_features)
    np_example = feature_processing.pair_and_merge(all_chain_features=all_chain_features)
    return pipeline_multimer.pad_msa(np_example, MIN_MSA_ROWS)
