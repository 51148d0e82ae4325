"""Training-step cost of the multi-task model against the two single-task models it replaces.

    python bench/train.py [--encoder resnet34] [--decoder_channels 256] [--size 256] [--bs 8] [--steps 10] [--device cpu|cuda] [--json PATH]
    python bench/train.py --device cuda --encoder resnet50 --size 512 --bs 32 --precision fp32 bf16 --channels_last

One full training step (forward, multi-task loss, backward, Adam step) on the same random batch, timed after
warm-up steps, for: STL tissue, STL lymph, MTL (a decoder per task) and MTL with a shared decoder. Reports
samples/s and the ratio MTL step time / (STL tissue + STL lymph step times). Ratios are meaningful within one
run on one machine; absolute samples/s only for the machine measured.
"""
import argparse, json, os, time
from pathlib import Path
import torch
from til_kit.models import TilNet
from til_kit.losses import MultiTaskLoss

VARIANTS = {'STL tissue': dict(tasks='tissue'), 'STL lymph': dict(tasks='lymph'),
            'MTL': dict(tasks='tissue,lymph'), 'MTL shared decoder': dict(tasks='tissue,lymph', shared_decoder=True)}

def batch(tasks, bs, size, device):
    "A random batch in the data layer's format: image, one target per task, task flags (all labelled)."
    x = torch.randn(bs, 3, size, size, device=device)
    ys = [torch.randint(0, 3, (bs, size, size), device=device) if t == 'tissue' else torch.rand(bs, 1, size, size, device=device)
          for t in tasks.split(',')]
    return x, ys + [torch.ones(bs, len(ys), dtype=torch.bool, device=device)]

def step_time(kw, encoder, decoder_channels, size, bs, steps, device, precision, channels_last, warmup=3):
    "Seconds per training step."
    model = TilNet(encoder=encoder, decoder_channels=decoder_channels, **kw).to(device).train()
    loss_func = MultiTaskLoss(kw['tasks']).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x, yb = batch(kw['tasks'], bs, size, device)
    x = x.contiguous(memory_format=fmt)
    def step():
        with torch.autocast(device_type=device.split(':')[0], dtype=torch.bfloat16, enabled=precision == 'bf16'):
            loss = loss_func(model(x), *yb)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    for _ in range(warmup): step()
    sync(); t = time.perf_counter()
    for _ in range(steps): step()
    sync()
    return (time.perf_counter() - t) / steps

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--encoder', default='resnet34')
    p.add_argument('--decoder_channels', type=int, default=256)
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--bs', type=int, default=8)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--precision', nargs='+', default=['fp32'], choices=['fp32', 'bf16'])
    p.add_argument('--channels_last', action='store_true')
    p.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument('--json', type=Path, help='also write the results here')
    a = p.parse_args()
    torch.manual_seed(0)
    name = torch.cuda.get_device_name() if a.device.startswith('cuda') else f'{os.cpu_count()} CPU cores, {torch.get_num_threads()} threads'
    print(f'{a.encoder} (decoder {a.decoder_channels} ch), {a.size}×{a.size}, batch {a.bs}, {a.steps} timed steps; {name}; torch {torch.__version__}')
    rows = []
    for prec in a.precision:
        times = {v: step_time(VARIANTS[v], a.encoder, a.decoder_channels, a.size, a.bs, a.steps, a.device, prec, a.channels_last) for v in a.variants}
        for v, t in times.items():
            rows.append(dict(variant=v, precision=prec, channels_last=a.channels_last, s_per_step=t, samples_per_s=a.bs / t))
            print(f'{prec:5s} {v:20s} {t * 1000:9.1f} ms/step {a.bs / t:9.1f} samples/s')
        if {'STL tissue', 'STL lymph'} <= set(times):
            pair = times['STL tissue'] + times['STL lymph']
            for v in ('MTL', 'MTL shared decoder'):
                if v in times: print(f'{prec:5s} {v}: {times[v] / pair:.2f}× the time of STL tissue + STL lymph')
    if len(a.precision) > 1:
        for v in a.variants:
            r = {x['precision']: x['samples_per_s'] for x in rows if x['variant'] == v}
            print(f'{v}: bf16 {r["bf16"] / r["fp32"]:.2f}× the samples/s of fp32')
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(dict(args={k: str(v) for k, v in vars(a).items()}, device=name, rows=rows), indent=1))

if __name__ == '__main__':
    main()
