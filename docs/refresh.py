"""Refresh the outputs committed with the notebooks: run them as JupyterLab does and write the outputs back into nbs/.

As in fastai and nbdev, each notebook in `nbs/` is committed with the outputs of a real run, so GitHub, JupyterLab
and the documentation site show the kit's real figures and numbers. This runs a notebook outside test mode (no
`IN_TEST`; `TIL_FULL=1`, so notebooks with a full-length experiment run it; cells flagged `cuda` run only where a
GPU is), in a fresh kernel of its own, and writes it back only if every cell ran: a failure leaves the notebook as
it was. The outputs are made lean on the way (progress bars dropped, large figures of pixels re-encoded as JPEG,
no output over 1 MB), a short line under the title says where they come from (commit, date, CPU/GPU, minutes),
and `nbdev_clean` is applied as to every commit.

    python docs/refresh.py nbs/08_mtl_vs_stl.ipynb    # one notebook (or several)
    python docs/refresh.py --all                      # every notebook, in tour order
    python docs/refresh.py --check                    # what CI checks: committed outputs are full, lean and clean
"""
from __future__ import annotations
import argparse, base64, io, json, os, re, subprocess, sys, tempfile, time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
MAX_OUTPUT = 1_000_000  # bytes: no single output may be larger
MAX_PNG = 150_000  # bytes: a PNG figure larger than this (pixels, not line art) is stored as JPEG
MAX_JPEG = 400_000  # bytes: a larger JPEG is scaled down
PROVENANCE = '*Outputs of a full run'  # how the line under the title begins
_re_provenance = re.compile(r'^\*Outputs of a full run: commit (\S+), (\d{4}-\d\d-\d\d), (.+?), (<?[\d.]+) min\.')
WIDGET = 'application/vnd.jupyter.widget-view+json'
WIDGET_NOTE = {'text/html': '<p class="nb-widget">An interactive widget appears here when the notebook runs in JupyterLab '
                            '(<code>jupyter lab nbs/</code>).</p>',
               'text/plain': 'An interactive widget appears here when the notebook runs in JupyterLab.'}
_re_bar = re.compile(r'\d+%\|.*\||<progress|\r')  # tqdm / fastprogress bars, and redrawn console lines


def notebooks() -> list[Path]:
    "Every notebook in tour order: `index.ipynb`, then `[0-9]*.ipynb` by file name."
    return [NBS / 'index.ipynb'] + sorted(NBS.glob('[0-9]*.ipynb'))


def read(path: Path) -> dict: return json.loads(path.read_text())


def code_cells(nb: dict) -> list[dict]: return [c for c in nb['cells'] if c['cell_type'] == 'code']


def provenance(nb: dict) -> re.Match | None:
    "The provenance line's fields (commit, date, device, minutes), if the notebook has one."
    cell = next((c for c in nb['cells'] if c['cell_type'] == 'markdown' and ''.join(c['source']).startswith(PROVENANCE)), None)
    return _re_provenance.match(''.join(cell['source'])) if cell else None


# --- making outputs lean -------------------------------------------------------------------------------

def _text(v) -> str: return ''.join(v) if isinstance(v, list) else v


def jpeg(png_b64: str, quality: int = 85) -> str:
    """A base64 PNG as a base64 JPEG on white (H&E figures: ~8× smaller, no visible loss), scaled down until it
    is at most `MAX_JPEG` bytes (a figure of a whole image drawn at full resolution)."""
    from PIL import Image
    im = Image.open(io.BytesIO(base64.b64decode(png_b64)))
    rgb = Image.new('RGB', im.size, 'white')
    rgb.paste(im, mask=im.getchannel('A') if im.mode in ('RGBA', 'LA') else None)
    while True:
        buf = io.BytesIO()
        rgb.save(buf, 'JPEG', quality=quality, optimize=True)
        if buf.tell() <= MAX_JPEG: return base64.b64encode(buf.getvalue()).decode()
        f = 0.95 * (MAX_JPEG / buf.tell()) ** 0.5
        rgb = rgb.resize((round(rgb.width * f), round(rgb.height * f)), Image.LANCZOS)


def lean_output(o: dict) -> dict | None:
    """One output made lean: progress bars and redrawn lines dropped (None if nothing is left), big PNGs as JPEG, a
    live widget replaced by a note."""
    if o['output_type'] == 'stream':
        lines = [l for l in _text(o['text']).splitlines(True) if not _re_bar.search(l)]
        if not ''.join(lines).strip(): return None
        return {**o, 'text': lines if isinstance(o['text'], list) else ''.join(lines)}  # as stored: a list of lines
    data = o.get('data')
    if not data: return o
    if WIDGET in data:  # a live widget: nothing a stored notebook or a page can show
        return dict(output_type='display_data', metadata={}, data=WIDGET_NOTE)
    if any('<progress' in _text(v) for k, v in data.items() if k == 'text/html'): return None
    png = _text(data.get('image/png', ''))
    if len(png) * 3 // 4 > MAX_PNG:
        data = {**{k: v for k, v in data.items() if k != 'image/png'}, 'image/jpeg': jpeg(png)}
        o = {**o, 'metadata': {('image/jpeg' if k == 'image/png' else k): v for k, v in o.get('metadata', {}).items()}}
    return {**o, 'data': data} if data else None


def size(o: dict) -> int: return len(json.dumps(o))


# --- one notebook (in its own process) ------------------------------------------------------------------

def _commit() -> str:
    "The commit the code comes from; `+` if the package or the scripts differ from it."
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(['git', 'diff', '--quiet', 'HEAD', '--', 'til_kit', 'setup.py', 'settings.ini', 'data_samples'], cwd=ROOT)
    return (head or 'unknown') + ('+' if dirty.returncode else '')


def _device() -> str:
    import torch
    if torch.cuda.is_available(): return f'GPU ({torch.cuda.get_device_name(0)})'
    return f'CPU ({len(os.sched_getaffinity(0))} cores)'


def run_one(path: Path) -> int:
    "Run `path` outside test mode and write it back with lean outputs and its provenance line; 1 if a cell failed."
    from execnb.nbio import read_nb, nb2dict
    from execnb.shell import CaptureShell
    import torch
    os.environ.pop('IN_TEST', None)
    os.environ['TIL_FULL'] = '1'
    nb = read_nb(path)
    nb.cells = [c for c in nb.cells if not (c.cell_type == 'markdown' and c.source.startswith(PROVENANCE))]
    for c in nb.cells:
        if c.cell_type == 'code': c.outputs = []
    gpu = torch.cuda.is_available()
    def skip(cell): return not gpu and cell.cell_type == 'code' and re.search(r'^#\|\s*cuda\b', cell.source, re.M)
    os.chdir(path.parent)  # as JupyterLab and nbdev_test run a notebook
    start, shell = time.time(), CaptureShell(path)
    try: shell.run_all(nb, exc_stop=True, preproc=skip)
    except BaseException as e:
        print(f'{path.name}: not refreshed: {type(e).__name__}: {str(e)[:300]}'); return 1
    minutes = (time.time() - start) / 60
    out = nb2dict(nb)
    for i, c in enumerate(out['cells']):
        if c['cell_type'] != 'code': continue
        c['outputs'] = [o for o in map(lean_output, c.get('outputs', [])) if o is not None]
        big = [(size(o), o['output_type']) for o in c['outputs'] if size(o) > MAX_OUTPUT]
        if big:
            print(f'{path.name}: not refreshed: cell {i} has an output ({big[0][1]}) of {big[0][0] / 1e6:.1f} MB, over 1 MB')
            return 1
    if any(c['outputs'] for c in code_cells(out)):
        took = f'{minutes:.1f}' if minutes >= 0.1 else '<0.1'
        line = (f'{PROVENANCE}: commit {_commit()}, {date.today()}, {_device()}, {took} min. '
                f'Refresh them with `python docs/refresh.py nbs/{path.name}`.*')
        first_md = next(i for i, c in enumerate(out['cells']) if c['cell_type'] == 'markdown')
        out['cells'].insert(first_md + 1, dict(cell_type='markdown', metadata={}, source=line))
    tmp = path.with_suffix('.tmp.ipynb')
    try:
        tmp.write_text(json.dumps(out, indent=1, ensure_ascii=False))
        if subprocess.run(['nbdev_clean', '--fname', str(tmp)], cwd=ROOT).returncode:
            print(f'{path.name}: not refreshed: nbdev_clean failed'); return 1
        tmp.replace(path)
    finally: tmp.unlink(missing_ok=True)  # nothing half-written is left beside the notebook
    print(f'{path.name}: refreshed in {minutes:.1f} min, {path.stat().st_size / 1e6:.2f} MB')
    return 0


# --- the check CI runs --------------------------------------------------------------------------------------

def check(paths: list[Path]) -> list[str]:
    "Problems with the committed outputs: missing, from test mode, not lean, or changed by `nbdev_clean`."
    problems = []
    for p in paths:
        nb = read(p)
        cells, prov = code_cells(nb), provenance(nb)
        has_outputs = any(c.get('outputs') for c in cells)
        if has_outputs and not prov: problems.append(f'{p.name}: outputs without the line saying where they come from')
        shows = any(c['source'] and '#| hide' not in _text(c['source']) for c in cells)
        if not has_outputs and shows:
            problems.append(f'{p.name}: no outputs: run python docs/refresh.py {p.relative_to(ROOT)}')
        for i, c in enumerate(nb['cells']):
            for o in c.get('outputs', []):
                if size(o) > MAX_OUTPUT: problems.append(f'{p.name}: cell {i}: an output of {size(o) / 1e6:.1f} MB')
                if lean_output(o) != o: problems.append(f'{p.name}: cell {i}: a progress bar or an unshrunk figure')
                if 'IN_TEST' in _text(o.get('text', '')): problems.append(f'{p.name}: cell {i}: output of a test-mode run')
    with tempfile.TemporaryDirectory() as d:  # nbdev_clean must keep the outputs as they are
        for p in paths:
            q = Path(d) / p.name
            q.write_text(p.read_text())
            subprocess.run(['nbdev_clean', '--fname', str(q)], check=True, cwd=ROOT, capture_output=True)
            if q.read_text() != p.read_text(): problems.append(f'{p.name}: nbdev_clean changes it: run nbdev_clean')
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', type=Path, help='notebooks to refresh')
    ap.add_argument('--all', action='store_true', help='refresh every notebook in nbs/')
    ap.add_argument('--check', action='store_true', help='check the committed outputs instead (exit 1 on a problem)')
    ap.add_argument('--one', type=Path, help=argparse.SUPPRESS)  # one notebook, in this process
    a = ap.parse_args()
    if a.one: sys.exit(run_one(a.one.resolve()))
    paths = notebooks() if a.all or (a.check and not a.notebooks) else [p.resolve() for p in a.notebooks]
    if not paths: ap.error('name notebooks, or --all, or --check')
    if missing := [str(p) for p in paths if not p.is_file()]: sys.exit(f'refresh: no such notebook: {missing[0]}')
    if a.check:
        problems = check(paths)
        for line in problems: print(line)
        full = sum(provenance(read(p)) is not None for p in paths)
        print(f'outputs: {full} of {len(paths)} notebooks carry outputs of a full run; {len(problems)} problem(s)')
        sys.exit(1 if problems else 0)
    failed = []
    try:
        for p in paths:
            if subprocess.run([sys.executable, __file__, '--one', str(p)], cwd=ROOT).returncode: failed.append(p.name)
    except KeyboardInterrupt: sys.exit('refresh: interrupted; the notebook being run was left as it was')
    print(f'refresh: {len(paths) - len(failed)} refreshed, {len(failed)} failed{": " + ", ".join(failed) if failed else ""}')
    sys.exit(1 if failed else 0)


if __name__ == '__main__': main()
