#!/bin/sh
# Lays out kiln's GitLab CI/CD component project in DEST, as GitLab requires: GitLab
# resolves `include: component: HOST/GROUP/PROJECT/kiln@VERSION` only from a project of
# its own instance that has the template at `templates/kiln.yml`, so the component
# cannot be included from kiln's own repository. The release workflow runs this in a
# clone of the GitLab project `kiln-build/kiln-component`, commits the result and tags
# it with the release's version (`0.1.0`, no `v`): the project's pipeline
# (`.gitlab-ci.yml`, from `component-project.gitlab-ci.yml`) then publishes that
# version to the CI/CD Catalog.
#
#   usage: gitlab-component/mirror.sh DEST
#
# DEST gets `templates/kiln.yml`, `README.md`, `.gitlab-ci.yml` and the repository's
# license files, if it has any. Everything else in DEST but `.git` is removed first, so
# that a file dropped here is dropped there too; a DEST that holds files but no
# `templates/` is refused rather than emptied.
set -eu

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DEST" >&2
    exit 2
fi

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd -P)
root=$(dirname -- "$here")

created=false
if [ ! -d "$1" ]; then
    mkdir -p -- "$1"
    created=true
fi
dest=$(CDPATH='' cd -- "$1" && pwd -P)
case "$dest/" in
    "$root/"*)
        if [ "$created" = true ]; then
            rmdir -- "$dest"
        fi
        echo "error: refusing to lay the component out in kiln's own repository ($dest)" >&2
        exit 1
        ;;
esac
if [ ! -d "$dest/templates" ] \
    && [ -n "$(find "$dest" -mindepth 1 -maxdepth 1 ! -name .git -print)" ]; then
    echo "error: $dest is not empty and has no templates/: not a component project, left alone" >&2
    exit 1
fi

find "$dest" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf -- {} +
mkdir -p -- "$dest/templates"
cp -- "$here/templates/kiln.yml" "$dest/templates/kiln.yml"
cp -- "$here/README.md" "$dest/README.md"
cp -- "$here/component-project.gitlab-ci.yml" "$dest/.gitlab-ci.yml"
for license in "$root"/LICENSE "$root"/LICENSE.* "$root"/LICENSE-* "$root"/COPYING; do
    if [ -f "$license" ]; then
        cp -- "$license" "$dest/"
    fi
done
echo "laid out the GitLab component project in $dest" >&2
