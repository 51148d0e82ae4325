"""What real pixels add: the demo model trained on synthetic ROIs only, against the same model trained on them together
with three real quarters labelled for lymphocytes only: as first tried (real drawn as often as each synthetic group,
pos_weight 50) and as `til_demo` does it now (real drawn half as often, pos_weight 10). Scored on the held-out real
quarter and on synthetic data.

    python bench/real_hne.py [--out bench/_out/real_hne] [--size full|quick] [--seeds 0 1] [--variants 0 2]

Each variant is a whole `til_demo` run (`run_demo`, its `full` size: the same model, data, epochs and budget), once
per seed; the runs are interleaved on this machine. Prints one row per run and the mean per variant: lymphocyte
precision/recall/F1 on the held-out real quarter (never trained on), F1 and Dice on the held-out synthetic ROIs and on
the synthetic slide, the slide's TIL score against its truth, and the training time; writes OUT/results.json.
`--variants` picks some of them by number (0: synthetic only, 1: first recipe, 2: til_demo's).
"""
import argparse, json
from pathlib import Path
import numpy as np, torch
from til_kit.demo import run_demo, DEMO_SIZES

VARIANTS = {'synthetic only': dict(real=False),
            'synthetic + real, first recipe': dict(real_weight=1.0, pos_weight=50),  # as first tried (issue 16)
            'synthetic + real (til_demo)': {}}
COLUMNS = [('real F1', 'real ROI, held out (hgsc)', 'f1'), ('real P', 'real ROI, held out (hgsc)', 'precision'),
           ('real R', 'real ROI, held out (hgsc)', 'recall'), ('ROIs F1', 'held-out ROIs (synthetic)', 'f1'),
           ('ROIs tum', 'held-out ROIs (synthetic)', 'dice_tumor'),
           ('ROIs str', 'held-out ROIs (synthetic)', 'dice_stroma'),
           ('slide F1', 'synthetic slide', 'f1'), ('slide tum', 'synthetic slide', 'dice_tumor'),
           ('slide str', 'synthetic slide', 'dice_stroma')]

def row(res: dict) -> dict:
    "The numbers of one demo run that the comparison needs."
    r = {name: res['scores'][where][key] for name, where, key in COLUMNS}
    til = next(s['til_score'] for s in res['slides'] if s['name'] == 'synth-s0')
    return dict(r, **{'TIL err': abs(til - res['til_truth']), 'train s': res['seconds']['train']})

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', type=Path, default=Path('bench/_out/real_hne'))
    p.add_argument('--size', default='full', choices=list(DEMO_SIZES))
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--variants', type=int, nargs='+', choices=range(len(VARIANTS)), default=list(range(len(VARIANTS))))
    a = p.parse_args()
    variants = {name: kw for i, (name, kw) in enumerate(VARIANTS.items()) if i in a.variants}
    runs = []
    for seed in a.seeds:
        for name, kw in variants.items():
            torch.manual_seed(seed)
            folder = name.replace(' ', '-').replace('+', 'and').replace(',', '').replace('(', '').replace(')', '')
            res = run_demo(a.out / f'{folder}-seed{seed}', a.size, overwrite=True, progress=False, seed=seed, **kw)
            runs.append(dict(variant=name, seed=seed, **row(res)))
    cols = [c for c in runs[0] if c not in ('variant', 'seed')]
    print(f"\n{'variant':32s} {'seed':>4s} " + ' '.join(f'{c:>9.9s}' for c in cols))
    for r in runs + [dict(variant=f'{v} (mean)', seed='', **{c: float(np.mean([r[c] for r in runs if r['variant'] == v]))
                                                              for c in cols}) for v in variants]:
        print(f"{r['variant']:32s} {r['seed']!s:>4s} " + ' '.join(f'{r[c]:9.3f}' for c in cols))
    (a.out / 'results.json').write_text(json.dumps(runs, indent=1))
    print(f"wrote {a.out / 'results.json'}")

if __name__ == '__main__': main()
