"""Package metadata comes from settings.ini (nbdev 2 layout); no pkg_resources needed."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['Planning', 'Pre-Alpha', 'Alpha', 'Beta', 'Production/Stable', 'Mature', 'Inactive']
lic = licenses[cfg['license']]
min_python = cfg['min_python']
py_versions = [v for v in '3.10 3.11 3.12 3.13'.split() if tuple(map(int, v.split('.'))) >= tuple(map(int, min_python.split('.')))]

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license=lic[0],
    author=cfg['author'], author_email=cfg['author_email'],
    url=cfg['git_url'],
    keywords=cfg['keywords'].split(),
    classifiers=[f'Development Status :: {cfg["status"]} - {statuses[int(cfg["status"])]}',
                 f'Intended Audience :: {cfg["audience"].title()}',
                 f'License :: {lic[1]}',
                 f'Natural Language :: {cfg["language"].title()}'] +
                [f'Programming Language :: Python :: {v}' for v in py_versions],
    packages=setuptools.find_packages(include=['til_kit', 'til_kit.*']),
    include_package_data=True,
    python_requires=f'>={min_python}',
    install_requires=cfg['requirements'].split(),
    extras_require={'dev': cfg['dev_requirements'].split()},
    entry_points={'console_scripts': cfg['console_scripts'].split(),
                  'nbdev': [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d']},
    zip_safe=False,
)
