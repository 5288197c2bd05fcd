#!/usr/bin/env bash
# Repository hygiene, run by CI before the tests: the code is formatted as .editorconfig says
# (dotnet format --verify-no-changes; fix with `dotnet format whitespace Distributed.sln`), and
# every central package version (Directory.Packages.props) is used by some project.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
if ! dotnet format whitespace Distributed.sln --verify-no-changes -v q; then
    echo "check-format: formatting differs from .editorconfig; run: dotnet format whitespace Distributed.sln" >&2
    status=1
fi
for package in $(grep -o 'PackageVersion Include="[^"]*"' Directory.Packages.props | cut -d'"' -f2); do
    if ! grep -rqs --include='*.csproj' --include='Directory.Build.*' "Include=\"$package\"" src tests Directory.Build.props Directory.Build.targets; then
        echo "check-format: Directory.Packages.props: $package has a version but no project references it" >&2
        status=1
    fi
done
[ "$status" -eq 0 ] && echo "check-format: ok"
exit "$status"
