#!/usr/bin/env bash
#
# php.sh manages the PHP side: the PHP client in clients/php and the Laravel
# example in examples/laravel. Both use Debian's PHP packages only, without
# Composer.
#
#   php.sh deps          install the Debian packages (a no-op when present)
#   php.sh test [ARGS]   run the client's and the example's phpunit suites
#                        (needs SIDECAR_BIN; ARGS go to both phpunit runs)
#
# The tests start the sidecar binary named by SIDECAR_BIN themselves, on
# SIDECAR_KAFKA_BROKERS and SIDECAR_REDIS_URL when set, embedded otherwise;
# see clients/php/tests/bootstrap.php.
set -euo pipefail

SCRIPT_NAME=php
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# PACKAGES are the Debian packages the client, the example and their tests
# need.
PACKAGES=(php-cli php-curl php-mbstring php-xml phpunit php-laravel-framework
	php-ramsey-uuid)

# SUITES are the folders with a phpunit.xml, run in this order.
SUITES=(clients/php examples/laravel)

# installed PKG succeeds when dpkg has PKG fully installed.
installed() {
	[[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

cmd_deps() {
	local missing=() p
	command -v dpkg-query >/dev/null || die "dpkg-query not found; install ${PACKAGES[*]} by hand"
	for p in "${PACKAGES[@]}"; do
		installed "$p" || missing+=("$p")
	done
	if ((${#missing[@]} > 0)); then
		apt_install "${missing[@]}"
	fi
	command -v php >/dev/null || die "php missing after installing ${PACKAGES[*]}"
	command -v phpunit >/dev/null || die "phpunit missing after installing ${PACKAGES[*]}"
	log "PHP packages ready ($(php -r 'echo PHP_VERSION;'), $(phpunit --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1))"
}

cmd_test() {
	local suite rc failed=()
	[[ -n "${SIDECAR_BIN:-}" ]] || die "SIDECAR_BIN is not set: build the sidecar (make build) and point SIDECAR_BIN at it"
	[[ -x "$SIDECAR_BIN" ]] || die "SIDECAR_BIN=$SIDECAR_BIN is not an executable file"
	command -v phpunit >/dev/null || die "phpunit not found; run php.sh deps"
	for suite in "${SUITES[@]}"; do
		log "phpunit in $suite"
		rc=0
		(cd "$REPO_ROOT/$suite" && phpunit --configuration phpunit.xml "$@") || rc=$?
		((rc == 0)) || failed+=("$suite (status $rc)")
	done
	((${#failed[@]} == 0)) || die "phpunit failed in ${failed[*]}"
}

main() {
	local usage="php.sh deps | test [PHPUNIT_ARGS...]"
	(($# >= 1)) || usage_exit "$usage"
	local cmd="$1"
	shift
	case "$cmd" in
	deps) cmd_deps ;;
	test) cmd_test "$@" ;;
	*) usage_exit "$usage" ;;
	esac
}

main "$@"
