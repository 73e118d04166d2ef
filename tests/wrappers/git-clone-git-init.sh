#!/bin/sh
# A stand-in for `/ko-app/git-init`, the Go program in the image of the Tekton catalog's
# git-clone Task (ghcr.io/tektoncd-catalog/git-clone, source image/git-init in
# github.com/tektoncd-catalog/git-clone at v1.7.0), which cannot be pulled here.
# run_tekton_step.py puts it at that path in the step's root, so the catalog's own step
# script runs unchanged. It runs the same git commands in the same order as
# git-init's `git.Fetch` (git/git.go) for the flags that script passes, and like it
# exits 1 when one fails; it leaves out the retries, the zap logging, the user-friendly
# error text and the termination message.
set -uf

git() {
  command git "$@" || {
    echo "Error fetching git repository: git $* failed" >&2
    exit 1
  }
}

url= revision= refspec= path= ssl_verify=true submodules=true depth=1 sparse= submodule_paths=
for arg in "$@"; do
  value=${arg#*=}
  case "$arg" in
    -url=*) url=$value ;;
    -revision=*) revision=$value ;;
    -refspec=*) refspec=$value ;;
    -path=*) path=$value ;;
    -sslVerify=*) ssl_verify=$value ;;
    -submodules=*) submodules=$value ;;
    -depth=*) depth=$value ;;
    -sparseCheckoutDirectories=*) sparse=$value ;;
    -submodulePaths=*) submodule_paths=$value ;;
    -userFriendlyErrors=*) ;;
    *) echo "git-init stand-in: unknown flag $arg" >&2; exit 1 ;;
  esac
done

if [ -n "$path" ]; then
  git init "$path"
  cd "$path" || exit 1
  git config --add --global safe.directory "$path"
else
  git init
  git config --add --global safe.directory /
fi
if [ -n "$sparse" ]; then
  git config core.sparsecheckout true
  printf '%s\n' "$sparse" | tr ',' '\n' >> .git/info/sparse-checkout || exit 1
fi
url=$(printf '%s' "$url" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
if command git remote | grep -qx origin; then
  git remote set-url origin "$url"
else
  git remote add origin "$url"
fi
if [ ! -e "${HOME:-/}/.ssh/known_hosts" ]; then
  git config core.sshCommand "ssh -o StrictHostKeyChecking=accept-new"
fi
git config http.sslVerify "$ssl_verify"

set -- fetch
[ "$submodules" != true ] || set -- "$@" --recurse-submodules=yes
if [ "$depth" -gt 0 ]; then
  set -- "$@" "--depth=$depth"
  command git config --unset remote.origin.fetch || true
fi
checkout=FETCH_HEAD
set -- "$@" origin --update-head-ok --force
if [ -n "$refspec" ]; then
  # Go's strings.Split(refspec, " "): one argument per space-separated part.
  for part in $refspec; do set -- "$@" "$part"; done
  checkout=$revision
else
  set -- "$@" "$revision"
fi
git "$@"
git show -q --pretty=format:%H "$checkout" > /dev/null
git checkout -f "$checkout"
commit=$(git show -q --pretty=format:%H HEAD) || exit 1
echo "Successfully cloned $url @ $commit in path $path" >&2
if [ "$submodules" = true ]; then
  set -- submodule update --recursive --init --force
  [ "$depth" -le 0 ] || set -- "$@" "--depth=$depth"
  if [ -n "$submodule_paths" ]; then
    old_ifs=$IFS; IFS=,
    for sub in $submodule_paths; do set -- "$@" "$sub"; done
    IFS=$old_ifs
  fi
  git "$@"
fi
