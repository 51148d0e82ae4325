"""Open the documentation site built by `.ci/docs` in headless Chromium and check it as a reader would.

Every page must load without a failed resource or script error; every image must have loaded (naturalWidth > 0);
every internal link must lead to an existing file and, with a #fragment, to an element with that id there; the
sidebar must list every notebook in file-name order; search must find an API name; no page may say that its
outputs come from a shortened (test-mode) run. Saves screenshots of the home page, a notebook page, and the
experiment (`08_mtl_vs_stl`) at its results table and at its bar chart to `_docs/_screenshots/`. Prints one line per problem and a summary line; exits
non-zero on any problem. Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`);
set CHROMIUM / CHROMEDRIVER to use others.

    python .ci/test_docs.py [_docs]
"""
from __future__ import annotations
import functools, http.server, os, sys, threading, time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

SCREENSHOT_PAGES = ('13_viewer', '09a_slides')  # the first that exists is shot, with its first figure
SEARCH_TERM = 'remap_tiger'
SHORTENED = ('outputs from a run in test mode', 'shortened training): the notebook')  # what a test-mode page says
EXPERIMENT = '08_mtl_vs_stl'

IMAGES_JS = """
const done = arguments[arguments.length - 1];
const imgs = Array.from(document.images);
imgs.forEach(i => { i.loading = 'eager'; });
Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; setTimeout(r, 10000); })))
  .then(() => done(imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src)
                       .concat(['count:' + imgs.length])));
"""
PAGE_JS = """
return {title: document.title, h1: !!document.querySelector('h1'), text: document.body.innerText,
        ids: Array.from(document.querySelectorAll('[id],a[name]')).map(e => e.id || e.name),
        links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
        sidebar: Array.from(document.querySelectorAll('nav.bd-docs-nav a.reference.internal')).map(a => a.href)};
"""


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    "Serve `site` on a free loopback port, as a web host would."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f'http://127.0.0.1:{httpd.server_address[1]}/'


def browser(height: int = 1000) -> webdriver.Chrome:
    "Headless Chromium, 1400 × `height` px, colours as the PNGs say (sRGB), its console log kept."
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get('CHROMIUM', '/usr/bin/chromium')
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', f'--window-size=1400,{height}',
              '--hide-scrollbars', '--force-device-scale-factor=1', '--force-color-profile=srgb'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    d = webdriver.Chrome(service=Service(os.environ.get('CHROMEDRIVER', '/usr/bin/chromedriver')), options=opts)
    d.set_page_load_timeout(60)
    d.set_script_timeout(30)
    return d


def local_file(site: Path, base: str, url: str) -> Path | None:
    "The file an internal `url` points to (None for an external one)."
    if not url.startswith(base): return None
    path = unquote(urlsplit(url).path)[len(urlsplit(base).path):]
    f = site / path
    return f / 'index.html' if not path or f.is_dir() else f


def check_site(site: Path) -> tuple[list[str], str]:
    "Problems found on the site in `site` (one line each), and a summary line."
    pages = sorted(site.glob('*.html'))
    nb_pages = ['index.html'] + sorted(p.name for p in pages if p.name[0].isdigit())
    problems, ids, links, n_imgs = [], {}, [], 0
    httpd, base = serve(site)
    d = browser()
    try:
        for p in pages:
            d.get(base + p.name)
            info = d.execute_script(PAGE_JS)
            broken = d.execute_async_script(IMAGES_JS)
            n_imgs += int(broken.pop()[len('count:'):])
            problems += [f'{p.name}: image did not load: {src}' for src in broken]
            if not info['title'] or not info['h1']: problems.append(f'{p.name}: no title or no <h1>')
            problems += [f'{p.name}: says its outputs come from a shortened run ("{s}")' for s in SHORTENED if s in info['text']]
            problems += [f'{p.name}: browser error: {e["message"][:200]}' for e in d.get_log('browser')
                         if e['level'] == 'SEVERE' and '/favicon.ico ' not in e['message']]  # Chrome asks for one
            ids[p.name] = set(info['ids'])
            links += [(p.name, u) for u in info['links']]
            if p.name == 'index.html':
                shown = list(dict.fromkeys(Path(urlsplit(u).path).name for u in info['sidebar']))
                if shown != nb_pages + ['api.html']:
                    problems.append(f'index.html: sidebar lists {shown}, expected the notebooks in order, then api.html')
        problems += check_links(site, base, links, ids)
        problems += check_search(d, base)
        shots = screenshots(d, base, site, nb_pages)
    finally:
        d.quit()
        httpd.shutdown()
    n_int = sum(local_file(site, base, u) is not None for _, u in links)
    summary = (f'docs site: {len(pages)} pages ({len(nb_pages)} notebooks), {n_imgs} images, {n_int} internal links '
               f'checked, screenshots {", ".join(shots)}; {len(problems)} problem(s)')
    return problems, summary


def check_links(site: Path, base: str, links: list[tuple[str, str]], ids: dict[str, set]) -> list[str]:
    "Each internal link must name an existing file and, if it has a #fragment, an id on that page."
    problems = []
    for page, url in dict.fromkeys(links):
        f = local_file(site, base, url)
        if f is None: continue
        frag = unquote(urlsplit(url).fragment)
        if not f.is_file(): problems.append(f'{page}: link to a missing file: {url[len(base):]}')
        elif frag and f.parent == site and f.name in ids and frag not in ids[f.name]:
            problems.append(f'{page}: link to a missing anchor: {url[len(base):]}')
    return problems


def check_search(d, base: str) -> list[str]:
    "The search page must list at least one result for an API name."
    d.get(f'{base}search.html?q={SEARCH_TERM}')
    for _ in range(40):
        if d.execute_script("return document.querySelectorAll('#search-results li, ul.search li').length"): return []
        time.sleep(0.5)
    return [f'search.html: no result for "{SEARCH_TERM}"']


def screenshots(d, base: str, site: Path, nb_pages: list[str]) -> list[str]:
    "The home page, and a notebook page at its top and at its first figure."
    out = site / '_screenshots'
    out.mkdir(exist_ok=True)
    page = next((f'{s}.html' for s in SCREENSHOT_PAGES if f'{s}.html' in nb_pages), nb_pages[-1])
    shots = []
    for name, url, js in (('home', 'index.html', None), (Path(page).stem, page, None),
                          (Path(page).stem + '-figure', page, "document.querySelector('.cell_output img')"
                                                                  "?.scrollIntoView({block: 'center'})")):
        d.get(base + url)
        d.execute_async_script(IMAGES_JS)
        if js: d.execute_script(js); time.sleep(0.3)
        d.save_screenshot(str(out / f'{name}.png'))
        shots.append(os.path.relpath(out / f'{name}.png'))
    if f'{EXPERIMENT}.html' in nb_pages: shots += experiment_shots(d, base, out)
    return shots


def experiment_shots(d, base: str, out: Path) -> list[str]:
    "The experiment's page at its results table (the section `Results`) and at its bar chart (its second figure)."
    d.get(f'{base}{EXPERIMENT}.html')
    d.execute_async_script(IMAGES_JS)
    shots = []
    for name, js in (('table', "document.getElementById('results').scrollIntoView({block: 'start'})"),
                     ('bars', "document.querySelectorAll('.cell_output img')[1].scrollIntoView({block: 'center'})")):
        d.execute_script(js)
        time.sleep(0.3)
        d.save_screenshot(str(out / f'{EXPERIMENT}-{name}.png'))
        shots.append(os.path.relpath(out / f'{EXPERIMENT}-{name}.png'))
    return shots


def main():
    site = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / '_docs').resolve()
    if not (site / 'index.html').is_file(): sys.exit(f'no site in {site}: run .ci/docs first')
    problems, summary = check_site(site)
    for p in problems: print(p)
    print(summary)
    sys.exit(1 if problems else 0)


if __name__ == '__main__': main()
