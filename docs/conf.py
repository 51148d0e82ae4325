# Sphinx configuration of the site that `.ci/docs` builds (see docs/build.py); nbdev's Quarto files stay as they are.
import configparser
from pathlib import Path

cfg = configparser.ConfigParser()
cfg.read(Path(__file__).resolve().parents[1] / 'settings.ini')
ini = cfg['DEFAULT']

project, author, copyright = ini['title'], ini['author'], ini['copyright']
root_doc = 'index'
extensions = ['myst_nb', 'sphinx-mathjax-offline']  # MathJax is served from _docs/_static, not a CDN
nb_execution_mode = 'off'  # the pages carry their outputs (docs/build.py)
myst_enable_extensions = ['dollarmath']
suppress_warnings = ['myst.header']  # show_doc headings may follow the page title directly

html_theme = 'sphinx_book_theme'
html_title = ini['title']
html_static_path = ['static']
html_css_files = ['site.css']
html_copy_source = html_show_sourcelink = html_use_index = False  # no empty general index
html_context = {'default_mode': 'light'}
html_theme_options = {
    'repository_url': ini['git_url'], 'use_repository_button': True, 'home_page_in_toc': True,
    'use_download_button': False, 'show_toc_level': 2, 'navigation_with_keys': False,
    # the book theme's own (empty) defaults, set again: under Sphinx 9 they were not applied and a second
    # search bar showed up above the page
    'navbar_start': '', 'navbar_center': '', 'navbar_end': '', 'navbar_persistent': '',
    'extra_footer': 'Each page shows the outputs committed with its notebook, from a full run as JupyterLab runs it '
                    '(the line under the title says which); <code>python docs/refresh.py</code> refreshes them.',
}
