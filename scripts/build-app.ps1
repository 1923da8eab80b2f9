# Build Atelier as a one-folder app on Windows (dist\Atelier\Atelier.exe + Atelier-cli.exe).
# The Windows twin of scripts/build-app; not run in our Linux CI. Usage:
#   powershell -ExecutionPolicy Bypass -File scripts\build-app.ps1 [-NoSelfTest]
param([switch]$NoSelfTest)
$ErrorActionPreference = "Stop"
Set-Location (Split-Path -Parent $PSScriptRoot)
$py = ".venv\Scripts\python.exe"
if (-not (Test-Path $py)) { throw "Run the set-up first: .venv is missing." }
& $py -m pip install -q -e ".[build]"
# The default packs installed in the user's library travel inside the bundle.
$packs = & $py -m desktop.bundled
$env:ATELIER_BUNDLE_PACKS = ($packs -join ";")
& $py -m PyInstaller --noconfirm --clean --distpath dist --workpath build\pyinstaller packaging\atelier.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
if (-not $NoSelfTest) {
  $env:ATELIER_HOME = Join-Path $env:TEMP "atelier-selftest"
  & dist\Atelier\Atelier-cli.exe --self-test
  if ($LASTEXITCODE -ne 0) { throw "the bundle's self-test failed" }
}
Write-Host "built dist\Atelier"
