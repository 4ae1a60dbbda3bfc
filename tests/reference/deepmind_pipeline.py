# Reference code for foldflow's tests, NOT part of foldflow.
#
# Source: google-deepmind/alphafold (AlphaFold 2.3 line), file alphafold/data/pipeline.py,
# function make_msa_features, copied verbatim; only the imports it needs are kept. The text was
# read from the repository at commit 2a8759713fd2254cbb5a7a28c7e3b861e67328c5 (a 2.3-era
# DataPipeline with uniref30/mgnify_max_hits/uniref_max_hits arguments); that commit was not
# checked against the v2.3.2 tag itself. The function is the installed alphafold-colabfold
# 2.3.x file's with its three commented-out lines restored, which
# tests/test_msa_parity.py::test_reference_is_the_fork_with_deduplication_restored checks.
# Licence: Apache License 2.0, copyright notice below.
#
# Why vendored: the installed `alphafold-colabfold` fork comments out the three lines of
# this function that skip a row whose aligned sequence was already seen in this or an
# earlier MSA (`if sequence in seen_sequences: continue` / `seen_sequences.add(sequence)`);
# DeepMind's AlphaFold 2.3 keeps them. tests/test_msa_parity.py uses this function as the
# independent reference for foldflow's deduplicated MSA features.
#
# Copyright 2021 DeepMind Technologies Limited
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Functions for building the input features for the AlphaFold model."""

from typing import MutableMapping, Sequence
from alphafold.common import residue_constants
from alphafold.data import msa_identifiers
from alphafold.data import parsers
import numpy as np

FeatureDict = MutableMapping[str, np.ndarray]


def make_msa_features(msas: Sequence[parsers.Msa]) -> FeatureDict:
  """Constructs a feature dict of MSA features."""
  if not msas:
    raise ValueError('At least one MSA must be provided.')

  int_msa = []
  deletion_matrix = []
  species_ids = []
  seen_sequences = set()
  for msa_index, msa in enumerate(msas):
    if not msa:
      raise ValueError(f'MSA {msa_index} must contain at least one sequence.')
    for sequence_index, sequence in enumerate(msa.sequences):
      if sequence in seen_sequences:
        continue
      seen_sequences.add(sequence)
      int_msa.append(
          [residue_constants.HHBLITS_AA_TO_ID[res] for res in sequence])
      deletion_matrix.append(msa.deletion_matrix[sequence_index])
      identifiers = msa_identifiers.get_identifiers(
          msa.descriptions[sequence_index])
      species_ids.append(identifiers.species_id.encode('utf-8'))

  num_res = len(msas[0].sequences[0])
  num_alignments = len(int_msa)
  features = {}
  features['deletion_matrix_int'] = np.array(deletion_matrix, dtype=np.int32)
  features['msa'] = np.array(int_msa, dtype=np.int32)
  features['num_alignments'] = np.array(
      [num_alignments] * num_res, dtype=np.int32)
  features['msa_species_identifiers'] = np.array(species_ids, dtype=np.object_)
  return features
