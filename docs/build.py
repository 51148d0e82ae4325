"""Build the documentation site into `_docs/` without Quarto.

A notebook's page shows the outputs committed with it (a full run, written by `docs/refresh.py`): it is passed
through nbdev's own processors (`show_doc` for every exported name, hidden and exported cells removed) without
executing anything. A notebook committed without outputs is executed in test mode instead (`IN_TEST=1`, cells
flagged with settings.ini's `tst_flags` skipped, as `nbdev_test` does), in its own process, and its page says so.
The pages are written as plain notebooks to `docs/_build/src/` and rendered by Sphinx + myst-nb with `docs/conf.py`.

    python docs/build.py            # every page, then render
    python docs/build.py --reuse    # execute only notebooks without outputs changed since their last build
    python docs/build.py --one nbs/00_core.ipynb   # execute one notebook in test mode (a test: .ci/run uses it)
    python docs/build.py --render   # render: pages from the committed outputs, and those executed before
"""
from __future__ import annotations
import argparse, functools, importlib, inspect, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

import nbdev.processors as P
from execnb.nbio import nb2dict
from execnb.shell import CaptureShell
from fastcore.docments import _fullname, _ital_first
from fastcore.xtras import working_directory
from nbdev.config import get_config
from nbdev.doclinks import NbdevLookup
from nbdev.frontmatter import _md2dict
from nbdev.process import NBProcessor, Processor, _directive
from nbdev.showdoc import show_doc
from docutils.nodes import make_id

sys.path.insert(0, str(Path(__file__).parent))
from refresh import lean_output, provenance, read  # noqa: E402  (docs/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
NBS, SRC, OUT = ROOT / 'nbs', ROOT / 'docs/_build/src', ROOT / '_docs'
SHOWDOC_KEY = 'til_docs_symbol'  # cell metadata naming the symbol a show_doc cell documents


def notebooks() -> list[Path]:
    "The pages in order: `nbs/index.ipynb` (the home page), then `nbs/[0-9]*.ipynb` by file name."
    return [NBS / 'index.ipynb'] + sorted(NBS.glob('[0-9]*.ipynb'))


# --- one notebook: execute and process (runs in its own process) ---------------------------------------

def _directives(cell) -> tuple[dict, str]:
    """A code cell's `#|` directives as {name: [args]} (those nbdev took out on reading and those left in the
    source, such as Quarto's `echo: false`), and its source without them."""
    lines = cell.source.splitlines(True)
    n = next((i for i, l in enumerate(lines) if not re.match(r'\s*#\|', l)), len(lines))
    dirs = {**getattr(cell, 'directives_', {}), **dict(filter(None, (_directive(l) for l in lines[:n])))}
    return dirs, ''.join(lines[n:]).strip()


class _Shown(str):
    "A string that a signature shows as it is (a default's name, a postponed annotation)."
    def __repr__(self): return str(self)


def signature(obj, ns: dict) -> str:
    "`obj`'s signature, with defaults that are objects in `ns` (such as arrays) shown by their names."
    try: sig = inspect.signature(obj)
    except (TypeError, ValueError): return '(...)'
    names = {id(v): k for k, v in ns.items() if not k.startswith('_')}
    def show(v, named: bool):
        if isinstance(v, str): return _Shown(v)
        return _Shown(names[id(v)]) if named and id(v) in names and not isinstance(v, (int, float, type(None))) else v
    params = [p.replace(default=show(p.default, True), annotation=show(p.annotation, False)) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=show(sig.return_annotation, False)))


def api_doc(name: str, ns: dict) -> str:
    "nbdev's `show_doc` Markdown for `name` in namespace `ns`; from `inspect` where `show_doc` fails."
    obj = eval(name, ns)
    try: return show_doc(obj)._repr_markdown_()
    except Exception as e:  # e.g. fastcore <2 cannot format a numpy array default
        print(f'  show_doc({name}) failed ({type(e).__name__}: {e}); documented from inspect instead')
        kind, src = 'class' if inspect.isclass(obj) else 'def', NbdevLookup().code(_fullname(obj))
        return (f'[source]({src}){{}}\n\n' if src else '') + f'### {name}\n\n```python\n{kind} {name}' \
               f'{signature(obj, ns)}\n```\n\n{_ital_first(inspect.getdoc(obj) or "")}\n'


def execute_processor(path: Path, skip_flags: set, failures: list):
    "An nbdev processor that runs the notebook's cells in one shell, as `nbdev_test` does; records the first error."

    class execute(Processor):
        def begin(self):
            k = CaptureShell(path)
            k.run_cell('from nbdev.showdoc import show_doc')
            with working_directory(path.parent):
                for cell in self.nb.cells:
                    if cell.cell_type != 'code' or not cell.source: continue
                    dirs, source = _directives(cell)
                    if skip_flags & dirs.keys() or dirs.get('eval:', [''])[0].lower() == 'false': continue
                    if m := re.fullmatch(r'show_doc\((.+)\)', source):
                        cell.outputs = [api_output(m.group(1), k.user_ns)]
                        continue
                    k.cell(cell)
                    if k.exc is not None:
                        failures.append(f'{path.name}: cell {cell.idx_}: {type(k.exc).__name__}: {k.exc}')
                        break
    return execute


def api_output(name: str, ns: dict) -> dict:
    "A `show_doc` cell's output: `name`'s API entry as Markdown."
    return dict(output_type='display_data', metadata={}, data={'text/markdown': api_doc(name, ns)})


class committed(Processor):
    "Keep the committed outputs; write each `show_doc` cell from the namespace of the notebook's module."
    def begin(self):
        module = P._default_exp(self.nb)
        self.ns = {'show_doc': show_doc, **(vars(importlib.import_module(f'{get_config().lib_name}.{module}')) if module else {})}

    def cell(self, cell):
        m = cell.cell_type == 'code' and re.fullmatch(r'show_doc\((.+)\)', _directives(cell)[1])
        if m: cell.outputs = [api_output(m.group(1), self.ns)]


class in_definition_order(Processor):
    "nbdev's `add_show_docs` inserts the `show_doc` cells of one exported cell in reverse order: restore it."
    def begin(self):
        cells, i = self.nb.cells, 0
        while i < len(cells):
            j = i
            while j < len(cells) and getattr(cells[j], 'has_sd', False): j += 1
            cells[i:j] = cells[i:j][::-1]
            i = j + 1


def take_title(nb) -> dict:
    "Title and summary (`# Title` and `> summary` lines of the first Markdown cell), removed from that cell."
    cell = next((c for c in nb.cells if c.cell_type == 'markdown'), None)
    fm = _md2dict(cell.source) if cell else {}
    if fm:
        pattern = r'^(#\s+' + re.escape(fm['title']) + r'|>\s+' + re.escape(fm.get('description', '')) + r')\s*$\n?'
        cell.source = re.sub(pattern, '', cell.source, count=2, flags=re.MULTILINE).strip()
    return fm


def _title_cell(fm: dict, path: Path, module: str | None, committed: bool) -> dict:
    "The page heading: title and summary from the notebook's first cell, then where the notebook and its outputs come from."
    lines = [f'# {fm.get("title", path.stem)}', '']
    if fm.get('description'): lines += [f'> {fm["description"]}', '']
    if path.name != 'index.ipynb':
        lines.append(f'<p class="nb-source">Notebook <code>nbs/{path.name}</code>'
                     + (f' · module <code>{module}</code>' if module else '')
                     + ('' if committed else ' · outputs from a run in test mode (shortened training): the notebook '
                        'has none committed yet') + '</p>')
    return dict(cell_type='markdown', metadata={}, source='\n'.join(lines))


def _md_cell(source: str, **metadata) -> dict: return dict(cell_type='markdown', metadata=metadata, source=source)


def to_page_cells(nb, skip_flags: set) -> list[dict]:
    "nbdev-processed cells → plain notebook cells that myst-nb renders as nbdev's Quarto site would."
    cells = []
    for c in nb.cells:
        if c.cell_type == 'markdown' and c.source.strip(): cells.append(_md_cell(c.source))
        if c.cell_type != 'code': continue
        dirs, source = _directives(c)
        outputs = [o for o in map(lean_output, nb2dict(c.get('outputs', []))) if o is not None]
        if dirs.get('output:') == ['asis']:  # show_doc: its Markdown output becomes the page's Markdown
            md = ''.join(''.join(o['data']['text/markdown']) for o in outputs if 'text/markdown' in o.get('data', {}))
            md = re.sub(r'^---\s*', '', md.lstrip())
            md = re.sub(r'\[source\]\((\S+?)\)\{[^}]*\}\s*(#+ .*\n)', r'\2\n<p class="api-source"><a href="\1">source</a></p>\n', md)
            name = re.search(r'show_doc\((.+)\)', source)
            cells.append(_md_cell(md, **({SHOWDOC_KEY: name.group(1)} if name else {})))
            continue
        if dirs.get('include:') == ['false'] or (not source and not outputs): continue
        flags = sorted(skip_flags & dirs.keys())
        if flags: cells.append(_md_cell(f'<p class="nb-skipped">Not run for these pages (cell flagged '
                                        f'<code>{", ".join(flags)}</code>).</p>'))
        tags = (['remove-input'] if dirs.get('echo:') == ['false'] else []) + \
               (['remove-output'] if dirs.get('output:') == ['false'] else [])
        cells.append(dict(cell_type='code', execution_count=None, metadata={'tags': tags} if tags else {},
                          outputs=outputs, source=source))
    return cells


def page(path: Path, execute: bool, failures: list) -> dict:
    """`path`'s page as a plain notebook: from its committed outputs, or (`execute`) from a run in test mode that
    appends the first failing cell to `failures`."""
    cfg, prov = get_config(), provenance(read(path))
    if execute:
        os.environ['IN_TEST'] = '1'
        skip_flags = set(cfg.tst_flags.split())
        run = execute_processor(path, skip_flags, failures)
    else: skip_flags, run = ({'cuda'} if prov and prov[3].startswith('CPU') else set()), committed  # a CPU run skips cuda cells
    procs = [P.populate_language, P.add_show_docs, in_definition_order, P.hide_line, P.rm_header_dash,
             P.clean_show_doc, run, P.strip_ansi, P.rm_export, P.clean_magics, P.hide_, P.mv_exports,
             P.strip_hidden_metadata]
    proc = NBProcessor(path, procs=procs)
    fm, module = take_title(proc.nb), P._default_exp(proc.nb)
    proc.process()
    cells = [_title_cell(fm, path, module and f'{cfg.lib_name}.{module}', not execute)] + to_page_cells(proc.nb, skip_flags)
    for i, c in enumerate(cells): c['id'] = f'cell-{i}'
    return dict(nbformat=4, nbformat_minor=5, cells=cells,
                metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
                          'language_info': {'name': 'python'}})


def write_page(path: Path, nb: dict):
    SRC.mkdir(parents=True, exist_ok=True)
    (SRC / path.name).write_text(json.dumps(nb, indent=1))


def build_one(path: Path) -> int:
    """Execute `path` in test mode, as a test (1 if a cell failed); its page shows the committed outputs, or this
    run's where none are committed."""
    failures = []
    nb = page(path, True, failures)
    write_page(path, page(path, False, []) if provenance(read(path)) else nb)
    for f in failures: print(f'  ERROR {f}')
    return 1 if failures else 0


# --- the whole site ---------------------------------------------------------------------------------------

def _doc_targets(pages: list[Path]) -> dict[str, str]:
    "URL (page.html#anchor) of every documented symbol, every notebook (by stem) and module (by name)."
    targets = {}
    for p in pages:
        cells = json.loads((SRC / p.name).read_text())['cells']
        url = f'{p.stem}.html'
        targets.setdefault(p.stem, url)
        mod = re.search(r'module <code>(\S+)</code>', cells[0]['source'])
        if mod: targets.setdefault(mod.group(1), url)
        for c in cells:
            name = c['metadata'].get(SHOWDOC_KEY)
            if name: targets.setdefault(name, f'{url}#{make_id(name)}')
    return targets


_re_code = re.compile(r'`([^`\s]+?)(\(\))?`')


def link_names(md: str, targets: dict[str, str]) -> str:
    "Turn `name` (a documented symbol, notebook stem or module) into a link, outside code blocks and headings."
    def link(m): return (f'<a href="{targets[m.group(1)]}"><code>{m.group(1)}{m.group(2) or ""}</code></a>'
                         if m.group(1) in targets else m.group(0))
    out, fenced = [], False
    for line in md.splitlines(True):
        if line.lstrip().startswith('```'): fenced = not fenced
        out.append(line if fenced or line.lstrip().startswith('#') else _re_code.sub(link, line))
    return ''.join(out)


API_PAGE = 'api'  # the page listing every documented name by module


def _summary(module: str, name: str) -> str:
    "First line of the docstring of `name` (possibly `Class.method`) in `module`, ready for a Markdown table cell."
    try: obj = functools.reduce(getattr, name.split('.'), importlib.import_module(module))
    except (ImportError, AttributeError): return ''
    return (inspect.getdoc(obj) or '').split('\n')[0].replace('|', '\\|')


def api_reference(pages: list[Path]) -> str:
    "The API reference page (MyST Markdown): per module, every name its notebook documents, linked, with its summary."
    lines = ['# API reference', '', 'Every function, class and method that `til_kit` exports, by module, with the first line of '
             'its docstring. A name links to its entry on the notebook page that defines it: signature, full docstring, '
             'source, and the code that shows and tests it.', '']
    for p in pages:
        cells = json.loads((SRC / p.name).read_text())['cells']
        mod = re.search(r'module <code>(\S+)</code>', cells[0]['source'])
        names = [c['metadata'][SHOWDOC_KEY] for c in cells if SHOWDOC_KEY in c['metadata']]
        if not mod or not names: continue
        title = re.match(r'# (.*)', cells[0]['source']).group(1)
        lines += [f'## {mod.group(1)}', '', f'<a href="{p.stem}.html">{title}</a> (`nbs/{p.name}`)', '', '| name | summary |', '|---|---|']
        lines += [f'| <a href="{p.stem}.html#{make_id(n)}"><code>{n}</code></a> | {_summary(mod.group(1), n)} |' for n in names]
        lines.append('')
    return '\n'.join(lines)


def finish_pages(pages: list[Path]):
    "Link names across pages and give the home page the table of contents (the sidebar, in notebook order)."
    pages = [p for p in pages if (SRC / p.name).exists()]  # a notebook that crashed its process has no page
    targets = _doc_targets(pages)
    for p in pages:
        f = SRC / p.name
        nb = json.loads(f.read_text())
        for c in nb['cells']:
            if c['cell_type'] == 'markdown': c['source'] = link_names(c['source'], targets)
        if p.name == 'index.ipynb':
            toc = '\n'.join(q.stem for q in pages[1:])
            toc = _md_cell(f'```{{toctree}}\n:hidden:\n:caption: Notebooks\n:maxdepth: 1\n\n{toc}\n```\n\n'
                           f'```{{toctree}}\n:hidden:\n:caption: Reference\n\n{API_PAGE}\n```')
            nb['cells'] = [c for c in nb['cells'] if c.get('id') != 'toctree'] + [{**toc, 'id': 'toctree'}]
        f.write_text(json.dumps(nb, indent=1))
    (SRC / f'{API_PAGE}.md').write_text(api_reference(pages))
    for stale in set(SRC.glob('*.ipynb')) - {SRC / p.name for p in pages}: stale.unlink()


def render(pages: list[Path]) -> int:
    """Write the pages of notebooks with committed outputs, link them with the pages executed before (in `SRC`) and
    render them with Sphinx into `OUT`; Sphinx's return code."""
    start = time.time()
    committed_pages = [p for p in pages if provenance(read(p))]
    for p in committed_pages: write_page(p, page(p, False, []))
    print(f'{len(committed_pages)} pages from committed outputs ({time.time() - start:.0f} s)')
    finish_pages(pages)
    html = ROOT / 'docs/_build/html'  # myst-nb writes beside its output folder: keep it in _build
    shutil.rmtree(html, ignore_errors=True)
    rc = subprocess.run([sys.executable, '-m', 'sphinx', '-q', '-b', 'html', '-c', str(ROOT / 'docs'),
                         '-d', str(ROOT / 'docs/_build/doctrees'), str(SRC), str(html)], cwd=ROOT).returncode
    shutil.rmtree(OUT, ignore_errors=True)
    if html.exists(): shutil.move(html, OUT)
    n = len(list(SRC.glob('*.ipynb')))
    print(f'sphinx: {"ok" if rc == 0 else "FAILED"}, {n} pages in {OUT.relative_to(ROOT)}/ ({time.time() - start:.0f} s)')
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--one', type=Path, help='execute this notebook in test mode and write its page (exit status 1 if a cell failed)')
    ap.add_argument('--render', action='store_true', help='render: pages from committed outputs and those executed before')
    ap.add_argument('--reuse', action='store_true', help="don't re-execute notebooks older than their page")
    args = ap.parse_args()
    if args.one: sys.exit(build_one(args.one.resolve()))
    pages = notebooks()
    if args.render: sys.exit(render(pages))

    t0, failed = time.time(), []
    for p in pages:
        done = SRC / p.name
        if provenance(read(p)) or (args.reuse and done.exists() and done.stat().st_mtime > p.stat().st_mtime):
            continue  # render() makes the pages of notebooks with committed outputs
        start = time.time()
        rc = subprocess.run([sys.executable, __file__, '--one', str(p)], cwd=ROOT).returncode
        print(f'{"ok  " if rc == 0 else "FAIL"} {p.name} ({time.time() - start:.0f} s)', flush=True)
        if rc:
            failed.append(p.name)
            if done.exists(): os.utime(done, (0, 0))  # so that --reuse runs it again
    rc = render(pages)
    print(f'docs: {len(failed)} notebook(s) failed to execute{": " + ", ".join(failed) if failed else ""}; '
          f'{time.time() - t0:.0f} s')
    sys.exit(1 if failed or rc else 0)


if __name__ == '__main__': main()
