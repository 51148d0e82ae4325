"""Run til_kit's viewer (`13_viewer`) in JupyterLab in headless Chromium and use it as a reader would.

Writes a small notebook and a prediction folder in `til_infer`'s layout into a temporary folder, starts JupyterLab
there on a free loopback port, opens the notebook, runs all its cells and waits for the widget. Then works the
controls: a layer checkbox off and on again, the threshold slider with the keyboard, the item dropdown to a Cerberus
image and back. After each change the picture in the browser must equal, pixel for pixel, what `render` draws for
that state in this process, and the scores line must follow. Saves a screenshot to
`_docs/_screenshots/jupyterlab-viewer.png`. Prints one line per problem and a summary line; exits non-zero on any
problem. Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`); set CHROMIUM /
CHROMEDRIVER to use others.

    python .ci/test_jupyterlab.py [_docs]
"""
from __future__ import annotations
import json, os, secrets, signal, socket, subprocess, sys, tempfile, time
from pathlib import Path
from urllib.request import Request, urlopen

import nbformat, numpy as np
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select
from test_docs import browser  # .ci/test_docs.py, beside this file

from til_kit.core import DATA_SAMPLES  # noqa: F401 (named in ITEMS)
from til_kit.io import output_paths, read_image, write_tiger_detections
from til_kit.viewer import LAYERS, cerberus_items, read_view, render, tiger_items  # noqa: F401 (ITEMS names the loaders)

NOTEBOOK = 'viewer.ipynb'
ITEMS = ("tiger_items(DATA_SAMPLES / 'tiger-real-hgsc', PRED)\n"  # the notebook's items; the first gets predictions
         "                + tiger_items(DATA_SAMPLES / 'tiger-synth', PRED)\n"
         "                + cerberus_items(DATA_SAMPLES / 'nuclei-hgsc', PRED)")
LAYER_TO_SWITCH, CERBERUS_ITEM = 'cells_true', 'nuclei-hgsc/hgsc_nest_x0_y0'
CANVAS_WIDTH = '640px'  # `Viewer`'s default `width`: tells the view apart from the plot and the thumbnail

NOTEBOOK_READY_JS = """
const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
const kernel = nb && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel;
return !!(nb && nb.context && nb.context.path === arguments[0] && nb.context.isReady && kernel
          && kernel.status === 'idle' && kernel.connectionStatus === 'connected');
"""
RUN_ALL_JS = """
window.jupyterapp.shell.collapseLeft();
window.jupyterapp.commands.execute('notebook:run-all-cells');
"""
OUTPUTS_JS = """
const cells = window.jupyterapp.shell.currentWidget.content.model.cells, out = [];
for (let i = 0; i < cells.length; i++) if (cells.get(i).type === 'code') out.push(...cells.get(i).outputs.toJSON());
return {errors: out.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
        text: Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText).join(' | ').slice(0, 300)};
"""
WIDGET_JS = """
const root = Array.from(document.querySelectorAll('.jp-OutputArea-output .widget-hbox')).find(b => b.querySelector('select'));
if (!root) return null;
const imgs = Array.from(root.querySelectorAll('img')), canvas = imgs.find(i => i.style.width === arguments[0]);
const slider = Array.from(root.querySelectorAll('.widget-slider'))
  .find(s => s.querySelector('.widget-label') && s.querySelector('.widget-label').textContent.trim() === 'threshold');
if (!canvas || !slider) return null;
const plot = imgs.find(i => i !== canvas && !i.closest('.widget-vbox .widget-vbox'));
const scores = Array.from(canvas.parentElement.children).find(e => e.classList.contains('widget-label'));
const select = root.querySelector('select'), text = o => o.textContent.replace(/\u00a0/g, ' ');  // shown with no-break spaces
const boxes = {};
root.querySelectorAll('.widget-checkbox').forEach(b => { boxes[b.innerText.trim()] = b.querySelector('input').checked; });
return {root: root, select: select, handle: slider.querySelector('.noUi-handle'), canvas_el: canvas,
        item: text(select.options[select.selectedIndex]), options: Array.from(select.options).map(text),
        boxes: boxes, threshold: slider.querySelector('.widget-readout').innerText.trim(), scores: scores ? scores.innerText : '',
        src: canvas.src, size: canvas.complete ? [canvas.naturalHeight, canvas.naturalWidth] : [0, 0],
        plot_src: plot ? plot.src : '', plot_shown: !!(plot && plot.offsetParent)};
"""
PIXELS_JS = """
const img = arguments[0], c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
const d = g.getImageData(0, 0, c.width, c.height).data, s = [0, 0, 0, 0];
for (let i = 0, p = 0; i < d.length; i += 4, p++) {
  const w = p % 997 + 1;
  s[0] += d[i]; s[1] += d[i + 1]; s[2] += d[i + 2]; s[3] += w * (d[i] + 3 * d[i + 1] + 7 * d[i + 2]);
}
return [c.height, c.width].concat(s);
"""


class Failed(Exception): "A step that later steps need did not happen; the message says what was expected."


def fingerprint(rgb: np.ndarray) -> list[int]:
    "Height, width, per-channel sums and a position-weighted sum of an RGB image, as `PIXELS_JS` computes them."
    a = rgb.reshape(-1, 3).astype(np.int64)
    w = np.arange(len(a)) % 997 + 1
    return [*rgb.shape[:2], *a.sum(0).tolist(), int((w * (a @ np.array([1, 3, 7]))).sum())]


def expected_pixels(item, threshold: float, hidden=()) -> list[int]:
    "The fingerprint of what the viewer draws for `item` with every layer but `hidden` at `threshold`."
    return fingerprint(render(read_view(item), [k for k in LAYERS if k not in hidden], threshold))


def write_predictions(item, pred: Path, seed: int = 0):
    """A `til_infer` detection file for `item`, made from its truth without a model: each true cell moved by
    about 1 µm with p in [0.35, 0.95], and half as many candidates at random places with p in [0.05, 0.75]."""
    rng = np.random.default_rng(seed)
    h, w = read_image(item.image).shape[:2]
    cells = item.cells + rng.normal(0, 2, item.cells.shape)
    others = rng.uniform((0, 0), (w, h), (len(cells) // 2, 2))
    p = np.concatenate([rng.uniform(0.35, 0.95, len(cells)), rng.uniform(0.05, 0.75, len(others))])
    write_tiger_detections(output_paths(pred, Path(item.image).stem)['detections'], np.vstack([cells, others]), p, item.spacing)


def write_notebook(path: Path, pred: Path):
    nb = nbformat.v4.new_notebook(metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3 (ipykernel)',
                                                           'language': 'python'}})
    nb.cells = [nbformat.v4.new_markdown_cell('# til_kit viewer in JupyterLab (CI)'),
                nbformat.v4.new_code_cell('from pathlib import Path\nfrom til_kit.core import DATA_SAMPLES\n'
                                          'from til_kit.viewer import *\n'
                                          f'PRED = Path({str(pred)!r})\nviewer = Viewer({ITEMS})\nviewer.widget')]
    nbformat.write(nb, path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_lab(root: Path, home: Path, token: str) -> tuple[subprocess.Popen, str]:
    """JupyterLab serving `root` on a free loopback port, with its user settings, runtime files and IPython profile
    under `home` (extensions and kernels still come from this Python's prefix); waits until it answers."""
    settings = home / 'lab-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings'
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))  # no news toast over the notebook
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / 'config'), JUPYTER_DATA_DIR=str(home / 'data'),
               JUPYTER_RUNTIME_DIR=str(home / 'runtime'), JUPYTERLAB_SETTINGS_DIR=str(home / 'lab-settings'),
               JUPYTERLAB_WORKSPACES_DIR=str(home / 'workspaces'), IPYTHONDIR=str(home / 'ipython'))
    port, log = free_port(), home / 'jupyterlab.log'
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--expose-app-in-browser', f'--port={port}',
           '--ServerApp.port_retries=0', '--ServerApp.ip=127.0.0.1', '--ServerApp.allow_root=True',
           f'--ServerApp.root_dir={root}', f'--IdentityProvider.token={token}']
    with open(log, 'w') as f: proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}/'
    for _ in range(120):
        if proc.poll() is not None: break
        try:
            with urlopen(f'{base}api/status?token={token}', timeout=2) as r:
                if r.status == 200: return proc, base
        except OSError: time.sleep(0.5)
    stop_lab(proc, base, token)
    raise Failed(f'JupyterLab did not answer on {base} within 60 s; its log ends: {log_tail(log)}')


def stop_lab(proc: subprocess.Popen, base: str, token: str):
    "Ask the server to shut down (it stops its kernels), then end its process group if it has not."
    try: urlopen(Request(f'{base}api/shutdown', method='POST', headers={'Authorization': f'token {token}'}), timeout=5)
    except OSError: pass
    try: proc.wait(15)
    except subprocess.TimeoutExpired: pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try: os.killpg(proc.pid, sig)
        except ProcessLookupError: return
        time.sleep(1)


def log_tail(log: Path, n: int = 300) -> str:
    return ' '.join(log.read_text(errors='replace')[-n:].split())


def wait_for(check, expected: str, timeout: float):
    "The first truthy value of `check()`, polled for `timeout` s; else `Failed` saying what was `expected`."
    end = time.monotonic() + timeout
    while True:
        v = check()
        if v: return v
        if time.monotonic() > end: raise Failed(f'expected {expected} within {timeout:g} s')
        time.sleep(0.2)


class Page:
    "The notebook in the browser: reads the widget's state, checks it, and keeps the problems and the steps done."
    def __init__(self, d: webdriver.Chrome):
        self.d, self.problems, self.done = d, [], []

    def expect(self, ok: bool, what: str):
        if not ok: self.problems.append(what)

    def widget(self) -> dict | None:
        "The viewer's controls and state, once its picture has loaded."
        w = self.d.execute_script(WIDGET_JS, CANVAS_WIDTH)
        return w if w and w['size'][0] else None

    def changed(self, before: dict, what: str, test=lambda w: True, timeout: float = 20) -> dict:
        "The widget once its picture is new and loaded and `test` holds."
        return wait_for(lambda: (w := self.widget()) and w['src'] != before['src'] and test(w) and w, what, timeout)

    def pixels(self, w: dict, want: list[int], what: str) -> list[int]:
        "The fingerprint of the picture shown, which must be `want`."
        got = self.d.execute_script(PIXELS_JS, w['canvas_el'])
        self.expect(got == want, f'{what}: the picture in the browser is not what render() draws (fingerprint {got}, expected {want})')
        return got


def run_notebook(page: Page, base: str, token: str) -> dict:
    "Open the notebook in JupyterLab, wait for its kernel, run all cells; the widget once it has rendered."
    d = page.d
    d.get(f'{base}lab/tree/{NOTEBOOK}?token={token}')
    wait_for(lambda: d.execute_script(NOTEBOOK_READY_JS, NOTEBOOK), f'JupyterLab to open {NOTEBOOK} with an idle kernel', 90)
    d.execute_script(RUN_ALL_JS)
    def rendered():
        out = d.execute_script(OUTPUTS_JS)
        return out if out['errors'] else page.widget()
    try: w = wait_for(rendered, 'the viewer widget (dropdown, checkboxes, threshold slider, a loaded image) after "run all"', 90)
    except Failed as e: raise Failed(f'{e}; the outputs show: {d.execute_script(OUTPUTS_JS)["text"]!r}') from None
    if 'errors' in w: raise Failed(f'the notebook raised {w["errors"][0]}')
    page.done.append('rendered')
    return w


def work_controls(page: Page, w: dict, items: list):
    "Check the widget as loaded, then use a checkbox, the slider and the dropdown as a reader would."
    by_name, first, layer = {i.name: i for i in items}, items[0], LAYERS[LAYER_TO_SWITCH]
    expect = page.expect
    expect(w['options'] == list(by_name), f'dropdown lists {w["options"]}, expected {list(by_name)}')
    expect(w['item'] == first.name and all(w['boxes'].get(v) for v in LAYERS.values()) and w['threshold'] == '0.50',
           f'initial state is {w["item"]!r}, boxes {w["boxes"]}, threshold {w["threshold"]}: expected {first.name!r}, all on, 0.50')
    expect(w['scores'].startswith('p ≥ 0.50: '), f'scores line reads {w["scores"]!r}, expected "p ≥ 0.50: ..."')
    expect(w['plot_shown'], 'the precision–recall plot is not shown for an item with predictions')
    start = page.pixels(w, expected_pixels(first, 0.5), 'as loaded')

    # a layer off and on again: the picture loses exactly that layer, then is as it was
    box = page.d.find_element('xpath', f'//label[contains(@class, "widget-label-basic")][normalize-space(.)="{layer}"]/input')
    box.click()
    w = page.changed(w, f'a new picture after unchecking "{layer}"', lambda w: not w['boxes'][layer])
    expect(page.pixels(w, expected_pixels(first, 0.5, [LAYER_TO_SWITCH]), f'"{layer}" off') != start,
           f'unchecking "{layer}" left the picture as it was')
    box.click()
    w = page.changed(w, f'a new picture after checking "{layer}" again', lambda w: w['boxes'][layer])
    page.pixels(w, start, f'"{layer}" on again')
    page.done.append('layer checkbox')

    # the threshold, moved with the keyboard on the slider's handle: readout, scores line, plot and picture follow
    before = w
    w['handle'].click()
    w['handle'].send_keys(Keys.ARROW_RIGHT * 5)
    w = wait_for(lambda: (v := page.widget()) and v['threshold'] != '0.50' and v['scores'].startswith(f'p ≥ {v["threshold"]}: ')
                 and v['src'] != before['src'] and v, 'the threshold readout to move off 0.50 and the scores line to follow it', 20)
    t = float(w['threshold'])
    expect(w['scores'] != before['scores'], f'scores line unchanged at threshold {t}: {w["scores"]!r}')
    expect(w['plot_src'] != before['plot_src'], 'the precision–recall plot did not change with the threshold')
    page.pixels(w, expected_pixels(first, t), f'threshold {t}')
    page.done.append('threshold slider')

    # another item, from the Cerberus folder: its image with its instances, no scores, no plot
    nuc = by_name[CERBERUS_ITEM]
    Select(w['select']).select_by_visible_text(nuc.name)
    w = page.changed(w, f'the picture of {nuc.name} after choosing it', lambda w: w['scores'] == f'no predicted cells ({nuc.name})')
    shape = list(read_image(nuc.image).shape[:2])
    expect(w['size'] == shape, f'{nuc.name} shown at {w["size"]} px, its image is {shape}')
    expect(not w['plot_shown'], f'the precision–recall plot is still shown for {nuc.name}, which has no cells')
    page.pixels(w, expected_pixels(nuc, t), nuc.name)
    page.done.append('item dropdown')

    # back to the first item: the threshold chosen is kept
    Select(w['select']).select_by_visible_text(first.name)
    w = page.changed(w, f'the picture of {first.name} after choosing it again',
                     lambda w: w['scores'].startswith(f'p ≥ {t:.2f}: ') and w['plot_shown'])
    page.pixels(w, expected_pixels(first, t), f'{first.name} again')
    page.done.append('item dropdown back')


def screenshot(page: Page, shot: Path):
    "The notebook with the viewer's cell at the top."
    page.d.execute_script("const c = document.querySelector('.jp-Notebook .jp-CodeCell'); if (c) c.scrollIntoView({block: 'start'});")
    time.sleep(0.5)
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.d.save_screenshot(str(shot))


def close(page: Page, shot: Path) -> list[str]:
    "Take the screenshot and quit the browser; its console errors, each once with its count."
    try:
        screenshot(page, shot)
        errors = [e['message'] for e in page.d.get_log('browser') if e['level'] == 'SEVERE']
        return [f'browser error ({errors.count(m)}×): {m[:200]}' for m in dict.fromkeys(errors)]
    finally: page.d.quit()


def viewer_items(pred: Path) -> list:
    "The items the notebook views: the same expression, `ITEMS`."
    return eval(f'({ITEMS})', dict(globals(), PRED=pred))


def main():
    docs = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / '_docs').resolve()
    shot, t0, token = docs / '_screenshots/jupyterlab-viewer.png', time.monotonic(), secrets.token_hex(16)
    shot.unlink(missing_ok=True)
    problems, done = [], []
    with tempfile.TemporaryDirectory(prefix='til-jupyterlab-') as tmp:
        root, home = Path(tmp) / 'root', Path(tmp) / 'home'
        pred = root / 'pred'
        root.mkdir()
        write_predictions(viewer_items(pred)[0], pred)
        write_notebook(root / NOTEBOOK, pred)
        items = viewer_items(pred)
        proc = page = None
        try:
            proc, base = start_lab(root, home, token)
            page = Page(browser(height=1100))
            work_controls(page, run_notebook(page, base, token), items)
        except Failed as e: problems.append(str(e))
        except WebDriverException as e: problems.append(f'browser: {type(e).__name__}: {(e.msg or str(e)).splitlines()[0]}')
        finally:
            try:
                if page: problems, done = page.problems + problems + close(page, shot), page.done
            finally:
                if proc: stop_lab(proc, base, token)
    for p in problems: print(p)
    n = len(done) - ('rendered' in done)
    print(f'jupyterlab viewer: {"rendered" if done else "not rendered"}, {n} interactions checked ({", ".join(done[1:]) or "none"}), '
          f'screenshot {os.path.relpath(shot) if shot.exists() else "none"}, {time.monotonic() - t0:.0f} s; {len(problems)} problem(s)')
    sys.exit(1 if problems else 0)


if __name__ == '__main__': main()
