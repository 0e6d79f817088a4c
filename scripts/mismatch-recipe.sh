#!/usr/bin/env bash
# The class-mismatch datasets of the RealMix README (section 2.3), ready to train.
#
# From the CIFAR-10 split <dataset>.<seed>@<size> (made here if missing), for each mismatch of 0, 25,
# 50, 75 and 100 percent, `ssl filter --mismatch` writes <output>_mismatch<p>.<seed>@<size>: labelled
# and test sets of the six animal classes 2..7, and an unlabelled set of four classes of which
# <p> percent are the non-animal classes 0, 1, 8, 9 that have no labels:
#   0%: 4,5,6,7   25%: 0,5,6,7   50%: 0,1,6,7   75%: 0,1,8,7   100%: 0,1,8,9
# --remap numbers the six classes 0..5 (the original keeps 2..7 and trains a 10-way head on them)
# and gives the unlabelled non-animal records label -1, after the animal ones in the file.
#
# Usage: scripts/mismatch-recipe.sh [seed (1)] [size (250)]
# Environment:
#   ML_DATA   data root (default ./data), as for every ssl command
#   SSL       the ssl command (default: ssl), e.g. "node dist/bin/ssl.js"
#   DATASET   source dataset (default: cifar10; its 10 classes must be CIFAR-10's)
#   OUTPUT    name of the outputs (default: cifar6)
#   VALID     validation records in the printed train commands (default: 0). Validation is the head
#             of the unlabelled file; with class mismatch that pool is not the labelled classes'
#             distribution (at 100% it holds none of them), so by default nothing is held out.
#             VALID=n holds out the first n animal records; the 100% setting has none.
#   FORCE=1   rebuild outputs that exist
# The README's next step, augmented copies of each unlabelled set, is `ssl aug-copy` on these names.
set -euo pipefail

SSL=${SSL:-ssl}
DATA=${ML_DATA:-data}
DATASET=${DATASET:-cifar10}
OUTPUT=${OUTPUT:-cifar6}
VALID=${VALID:-0}
SEED=${1:-1}
SIZE=${2:-250}
force=()
[[ ${FORCE:-0} == 1 ]] && force=(--force)

split="$DATASET.$SEED@$SIZE"
if [[ ! -f "$DATA/SSL/$split-label.tfrecord" || ! -f "$DATA/SSL/$split-unlabel.tfrecord" ]]; then
  $SSL create-split --data-dir "$DATA" --dataset "$DATASET" --seed "$SEED" --size "$SIZE"
fi

for p in 0 25 50 75 100; do
  $SSL filter --data-dir "$DATA" --input "$split" --mismatch "$p" --remap --output "${OUTPUT}_mismatch$p" ${force[@]+"${force[@]}"}
done

echo
echo "Train each setting, e.g.:"
for p in 0 25 50 75 100; do
  valid=$VALID
  [[ $p == 100 ]] && valid=0
  echo "  ssl train --algo mixmatch --dataset ${OUTPUT}_mismatch$p.$SEED@$SIZE-$valid"
done
