#!/usr/bin/env bash
# Download AlphaFold 2.3's sequence databases and parameters (not run in CI; about 0.6 TB for
# full_dbs, 0.5 TB compressed downloads). Sources are AlphaFold's own download scripts'.
#   scripts/download_databases.sh /data/alphafold [reduced_dbs|full_dbs]
set -euo pipefail
DEST=${1:?usage: $0 DEST_DIR [reduced_dbs|full_dbs]}
PRESET=${2:-reduced_dbs}
mkdir -p "$DEST"
fetch() {  # url, folder: download (resumable) and unpack into DEST/folder
  local url=$1 folder=$DEST/$2 file
  file=$folder/$(basename "$url")
  mkdir -p "$folder"
  if command -v aria2c >/dev/null; then aria2c -c -x 8 -d "$folder" "$url"; else wget -c -P "$folder" "$url"; fi
  case "$file" in
    *.tar.gz) tar -xzf "$file" -C "$folder" && rm "$file" ;;
    *.tar) tar -xf "$file" -C "$folder" && rm "$file" ;;
    *.gz) gunzip -f "$file" ;;
  esac
}
fetch https://storage.googleapis.com/alphafold/alphafold_params_2022-12-06.tar params
fetch https://ftp.ebi.ac.uk/pub/databases/uniprot/uniref/uniref90/uniref90.fasta.gz uniref90
fetch https://storage.googleapis.com/alphafold-databases/v2.3/mgy_clusters_2022_05.fa.gz mgnify
if [ "$PRESET" = reduced_dbs ]; then
  fetch https://storage.googleapis.com/alphafold-databases/reduced_dbs/bfd-first_non_consensus_sequences.fasta.gz small_bfd
else
  fetch https://storage.googleapis.com/alphafold-databases/casp14_versions/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt.tar.gz bfd
  fetch https://storage.googleapis.com/alphafold-databases/v2.3/UniRef30_2021_03.tar.gz uniref30
fi
fetch http://wwwuser.gwdg.de/~compbiol/data/hhsuite/databases/hhsuite_dbs/old-releases/pdb70_from_mmcif_200401.tar.gz pdb70
fetch https://files.wwpdb.org/pub/pdb/derived_data/pdb_seqres.txt pdb_seqres
echo "databases and parameters in $DEST; point configs/alphafold.yaml at them (PDB mmCIF files and UniProt:"
echo "AlphaFold's download_pdb_mmcif.sh and download_uniprot.sh; foldflow databases downloads lists them)"
