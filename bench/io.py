"""Region-read throughput of `til_kit.io.Slide`: 512×512 regions at a spacing, random positions, one process vs workers.

    python bench/io.py [--n 400] [--workers 2] [--spacing 0.5] [--json bench/_out/io.json]

Reads from the JPEG-tiled synthetic slide and the real Aperio SVS in data_samples/. Ratios between rows are
meaningful on one machine in one run; absolute numbers only for the machine they were measured on.
"""
import argparse, json, os, time
from multiprocessing import Pool
from pathlib import Path
import numpy as np
from til_kit.core import DATA_SAMPLES
from til_kit.io import Slide

SLIDES = {'synthetic JPEG-tiled TIFF (256-px tiles)': DATA_SAMPLES / 'tiger-synth/wsirois/wsi-level-annotations/images/synth-s0.tif',
          'real Aperio SVS (240-px JPEG tiles)': DATA_SAMPLES / 'slides/cmu_small_region.svs'}
_slide = None

def positions(path, n, size, spacing, seed=0):
    "Random top-left corners (level-0 px) of regions that lie inside the slide."
    with Slide(path) as s:
        span = size * spacing / s.spacing
        H, W = s.shapes[0]
        rng = np.random.default_rng(seed)
        return np.stack([rng.uniform(0, W - span, n), rng.uniform(0, H - span, n)], 1)

def _open(path):
    global _slide
    _slide = Slide(path)

def _read(args):
    x, y, size, spacing = args
    return int(_slide.read_region(x, y, (size, size), spacing).sum() % 7)  # touch the pixels, return little

def regions_per_s(path, xy, size, spacing, workers):
    jobs = [(x, y, size, spacing) for x, y in xy]
    if workers == 0:
        _open(path)
        t = time.perf_counter(); [_read(j) for j in jobs]; dt = time.perf_counter() - t
    else:
        with Pool(workers, initializer=_open, initargs=(path,)) as pool:
            pool.map(_read, jobs[:workers * 2])  # warm up every worker
            t = time.perf_counter(); pool.map(_read, jobs, chunksize=8); dt = time.perf_counter() - t
    return len(jobs) / dt

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=400, help='regions per measurement')
    p.add_argument('--size', type=int, default=512)
    p.add_argument('--spacing', type=float, nargs='+', default=[0.5, 2.0])
    p.add_argument('--workers', type=int, default=os.cpu_count())
    p.add_argument('--json', type=Path, help='also write the results here')
    a = p.parse_args()
    rows = []
    print(f'{a.n} random {a.size}×{a.size} regions; {os.cpu_count()} CPU cores')
    print(f'{"slide":44s} {"µm/px":>6s} {"1 process":>10s} {f"{a.workers} workers":>10s} {"speed-up":>8s}')
    for name, path in SLIDES.items():
        for spacing in a.spacing:
            xy = positions(path, a.n, a.size, spacing)
            one, many = regions_per_s(path, xy, a.size, spacing, 0), regions_per_s(path, xy, a.size, spacing, a.workers)
            rows.append(dict(slide=name, spacing=spacing, regions_per_s_1=one, regions_per_s_workers=many, workers=a.workers))
            print(f'{name:44s} {spacing:6.2f} {one:8.1f}/s {many:8.1f}/s {many / one:7.2f}×')
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()
