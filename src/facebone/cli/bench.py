"""`facebone bench`: speed on this machine, of backbones, verification and training."""

import argparse
import logging
import os
import platform
from dataclasses import asdict
from pathlib import Path

from facebone.cli.common import (
    add_cache_argument,
    add_data_argument,
    add_json_argument,
    add_key_file_argument,
    create_backbones,
    load_model,
    open_cache,
    parse_backbone_specs,
    require_dir,
    seed_value,
)
from facebone.cli.output import emit
from facebone.errors import FaceBoneError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure speed on this machine",
        description=(
            "Start-up (facebone --help in a fresh process); images per second per backbone, "
            "end to end and model only, without cache; with --model, verify latency in process "
            "and end to end through the CLI; with --pairs-dir, cached train + evaluate time."
        ),
    )
    add_data_argument(parser)
    parser.add_argument(
        "--backbones", default="sface,dlib", help="comma-separated backbones ('' for none)"
    )
    parser.add_argument("--images", type=int, default=200, help="images to time (default 200)")
    parser.add_argument(
        "--runs", type=int, default=7, help="fresh processes timed per CLI measure (median)"
    )
    parser.add_argument("--model", type=Path, help="model directory: time verify on new photos")
    parser.add_argument(
        "--pairs-dir",
        type=Path,
        help="folder with target_train.csv and target_test.csv: time cached train + evaluate",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="only the REST API: start `facebone serve --model` on 127.0.0.1 and time warm "
        "POST /verify of new photos, then throughput under 8 concurrent clients",
    )
    gallery = parser.add_argument_group(
        "gallery (--gallery)",
        "with --model (and --key-file): 1:N rank-1 on every person of --data with two or more "
        "photos, with the model's templates plain and CKKS-encrypted; batched enrolment faces/s "
        "of the first --images photos (embedding included); search latency over "
        "--gallery-size plain templates (exact and HNSW) and --gallery-encrypted-size "
        "encrypted ones (real ones padded with Gaussian vectors)",
    )
    gallery.add_argument("--gallery", action="store_true", help="only the gallery")
    gallery.add_argument(
        "--gallery-size",
        type=int,
        default=100_000,
        help="plain templates searched, exact and HNSW (default 100000)",
    )
    gallery.add_argument(
        "--gallery-encrypted-size",
        type=int,
        default=10_000,
        help="encrypted templates searched (default 10000)",
    )
    gallery.add_argument(
        "--gallery-probes",
        type=int,
        help="rank-1 over this many probes drawn with --seed (default: every probe; an "
        "encrypted search costs ~0.1 s per 4096 people and backbone)",
    )
    add_key_file_argument(gallery)
    inversion = parser.add_argument_group(
        "model inversion (--inversion)",
        "time the attacks' own training and search on seed --seed's attacker faces (the "
        "first --images of them) with short budgets, scaled to their default budgets",
    )
    inversion.add_argument(
        "--inversion",
        action="store_true",
        help="only model inversion: decoder training faces/s at 64x64, gradient-inversion "
        "steps/s through the SFace copy, black-box score-search queries/s",
    )
    inversion.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    inversion.add_argument(
        "--seed", type=seed_value, default=0, help="seed of the split and training"
    )
    inversion.add_argument("--epochs", type=int, default=2, help="decoder epochs timed")
    inversion.add_argument("--steps", type=int, default=10, help="gradient steps timed")
    inversion.add_argument(
        "--queries", type=int, default=40, help="black-box queries timed per target"
    )
    inversion.add_argument(
        "--targets", type=int, default=8, help="targets inverted together, gradient and black-box"
    )
    add_cache_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from facebone.benchmark import (
        bench_backbone,
        bench_cli_verify,
        bench_sface_onnxruntime,
        bench_shadows,
        bench_startup,
        bench_train_evaluate,
        bench_verify,
    )
    from facebone.data.lfw import scan_lfw
    from facebone.data.pairs import read_pairs
    from facebone.faces.detect import FaceDetector
    from facebone.system import load_system

    require_dir(args.data, "data folder")
    if args.serve:
        return _run_serve(args)
    if args.gallery:
        return _run_gallery(args)
    if args.inversion:
        return _run_inversion(args)
    if args.device != "cpu":
        raise FaceBoneError("--device applies to --inversion only")
    if args.images < 1 or args.runs < 1:
        raise FaceBoneError("--images and --runs must be at least 1")
    paths = [image.path for image in scan_lfw(args.data)][: max(args.images, 2 * args.runs)]
    detector = FaceDetector()
    log.info("measuring start-up: facebone --help, %d fresh processes", args.runs)
    results: dict = {"startup": bench_startup(args.runs), "backbones": {}}
    lines = [f"start-up (facebone --help): {results['startup']['median_ms']} ms median"]
    for backbone in create_backbones(args.backbones) if args.backbones else []:
        log.info("measuring %s on %d images, end to end and model only", backbone.name, len(paths))
        try:
            measured = bench_backbone(backbone, args.data, paths, detector)
        finally:
            backbone.close()
        if backbone.name == "sface":
            measured["model_images_per_s_onnxruntime"] = bench_sface_onnxruntime(
                args.data, paths, detector
            )
        results["backbones"][backbone.name] = measured
        lines.append(
            f"{backbone.name}: {measured['end_to_end_images_per_s']} images/s end to end, "
            f"{measured['model_images_per_s']} model only (batch {measured['batch_size']})"
        )
    if args.model:
        log.info("measuring verify of new photos with %s, in process", args.model)
        system = load_system(args.model, open_cache(args), progress=False)
        try:
            results["verify"] = bench_verify(system, args.data, paths)
        finally:
            system.embedder_.close()
        by_backbone = ", ".join(
            f"{name} {ms} ms" for name, ms in results["verify"]["median_ms_by_backbone"].items()
        )
        lines.append(
            f"verify: {results['verify']['median_ms']} ms median on new photos "
            f"(answered by {by_backbone})"
        )
        log.info("measuring facebone verify end to end, %d fresh processes", args.runs)
        results["verify_cli"] = bench_cli_verify(args.model, args.data, paths, args.runs)
        lines.append(f"facebone verify, end to end: {results['verify_cli']['median_ms']} ms median")
    if args.pairs_dir:
        log.info("measuring cached train + evaluate on %s", args.pairs_dir)
        train = read_pairs(args.pairs_dir / "target_train.csv", args.data).pairs
        test = read_pairs(args.pairs_dir / "target_test.csv", args.data).pairs
        results["train_evaluate"] = bench_train_evaluate(
            parse_backbone_specs(args.backbones), args.data, train, test, open_cache(args)
        )
        lines.append(f"cached train + evaluate: {results['train_evaluate']['seconds']} s")
        log.info("measuring shadow training: 64 at once and 4 one by one, both regimes")
        results["shadows"] = bench_shadows(args.data, train, open_cache(args))
        for regime, rate in results["shadows"].items():
            lines.append(
                f"shadows, {regime} regime ({rate['train_pairs']} pairs): "
                f"{rate['batched_per_s']}/s batched, {rate['one_by_one_per_s']}/s one by one"
            )
    results["machine"] = _machine()
    emit(results, args.json, "\n".join(lines))
    return 0


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()}


def _run_serve(args: argparse.Namespace) -> int:
    from facebone.data.lfw import scan_lfw
    from facebone.service.bench import bench_serve

    if args.model is None:
        raise FaceBoneError("--serve needs --model, the model directory to serve")
    measured = bench_serve(args.model, args.data, [image.path for image in scan_lfw(args.data)])
    latency, load = measured["latency"], measured["throughput"]
    emit(
        {"serve": measured},
        args.json,
        f"server: {measured['model']}, {measured['cpus']} CPUs\n"
        f"POST /verify, warm, new photos: {latency['median_ms']} ms median, "
        f"{latency['p95_ms']} ms p95 ({latency['requests']} requests, {latency['failed']} failed)\n"
        f"{load['clients']} concurrent clients: {load['requests_per_s']} requests/s, "
        f"{load['median_ms']} ms median, {load['p95_ms']} ms p95 ({load['failed']} failed)",
    )
    return 0


def _run_gallery(args: argparse.Namespace) -> int:
    import numpy as np

    from facebone.data.lfw import scan_lfw
    from facebone.gallery.bench import enrolment_rate, rank1_accuracy, search_latency, twin

    if args.model is None:
        raise FaceBoneError("--gallery needs --model, the model directory whose gallery to time")
    for flag in ("images", "gallery_size", "gallery_encrypted_size", "gallery_probes"):
        if (getattr(args, flag) or 1) < 1:
            raise FaceBoneError(f"--{flag.replace('_', '-')} must be at least 1")
    paths = [image.path for image in scan_lfw(args.data)]
    system = load_model(args, open_cache(args), progress=not args.json)
    try:
        log.info("embedding the %d photos of %s (cached)", len(paths), args.data)
        embeddings = system.embedder_.dataset(args.data, paths)
        plain = twin(system, None)
        # Encrypted templates are matched by cosine: only the cosine predictor scores them.
        ckks = twin(system, "ckks") if system.predictor == "cosine" else None
        log.info("rank-1: one photo of each person enrolled, the others probe")
        rank1 = {
            name: rank1_accuracy(made, args.model, embeddings, args.gallery_probes, args.seed)
            for name, made in (("plain", plain), ("ckks", ckks))
            if made is not None
        }
        enrolled = paths[: args.images]
        system.embedder_.warm_up()  # models load before the clock starts
        log.info("enrolment of %d photos, embedding included, batched", len(enrolled))
        enrolment = [enrolment_rate(s, args.model, args.data, enrolled) for s in (plain, ckks) if s]
        real = {name: np.stack(list(table.values())) for name, table in embeddings.items()}
        log.info("search over %d plain templates, exact then HNSW", args.gallery_size)
        search = [
            search_latency(plain, args.model, real, args.gallery_size, ann, seed=args.seed)
            for ann in (False, True)
        ]
        if ckks is not None:
            log.info("search over %d encrypted templates", args.gallery_encrypted_size)
            search.append(
                search_latency(
                    ckks, args.model, real, args.gallery_encrypted_size, None, 50, args.seed
                )
            )
    finally:
        system.embedder_.close()
    results = {
        "gallery": {
            "system": {
                "backbones": list(system.embedder_.names),
                "predictor": system.predictor,
                "template_protection": system.template_protection,
                "answers": "ensemble" if system._query_sources(1) is None else "one backbone",
            },
            "rank1": {name: asdict(r) for name, r in rank1.items()},
            "enrolment": [asdict(e) for e in enrolment],
            "search": [asdict(latency) for latency in search],
        },
        "machine": {**_machine(), "blas": _blas_threads()},
    }
    if ckks is not None:
        results["gallery"]["ckks_minus_plain"] = rank1["ckks"].rank1 - rank1["plain"].rank1
    emit(results, args.json, _gallery_text(results, args.model, args.data))
    return 0


def _blas_threads() -> str:
    from threadpoolctl import threadpool_info

    pools = {f"{pool['internal_api']} {pool['num_threads']} threads" for pool in threadpool_info()}
    return ", ".join(sorted(pools))


def _gallery_text(results: dict, model: Path, data: Path) -> str:
    measured, machine = results["gallery"], results["machine"]
    system = measured["system"]
    lines = [
        f"gallery of {model}: {'+'.join(system['backbones'])}, {system['predictor']} predictor "
        f"({system['answers']}), stored {system['template_protection'] or 'plain'}; "
        f"{machine['cpus']} CPUs, BLAS {machine['blas']}"
    ]
    for name, r in measured["rank1"].items():
        sample = "every probe" if r["seed"] is None else f"{r['probes']} probes, seed {r['seed']}"
        lines.append(
            f"rank-1 on {data}, {name} templates ({sample}): {r['rank1']:.4f}, "
            f"named right at the open-set threshold {r['identified']:.4f} "
            f"({r['subjects']} subjects, {r['probes']} probes)"
        )
    if "ckks_minus_plain" in measured:
        lines.append(
            f"rank-1 encrypted minus plain, same probes: {measured['ckks_minus_plain']:+.4f}"
        )
    for e in measured["enrolment"]:
        lines.append(
            f"enrolment, {e['protection'] or 'plain'} templates: {e['faces_per_s']:.1f} faces/s "
            f"({e['faces']} photos of {e['people']} people, {e['batch_size']} people per "
            "transaction, embedding included)"
        )
    for s in measured["search"]:
        lines.append(
            f"search over {s['templates']} templates ({s['kind']}): {s['p50_ms']:.2f} ms median, "
            f"{s['p95_ms']:.2f} ms p95 ({s['queries']} queries, seed {s['seed']}; first search, "
            f"reading the store and building the index: {s['build_s']:.1f} s)"
        )
    return "\n".join(lines)


def _run_inversion(args: argparse.Namespace) -> int:
    import torch

    from facebone.attacks.inversion.base import aligned_faces
    from facebone.attacks.inversion.bench import bench_blackbox, bench_decoder, bench_optimise
    from facebone.backbones import create_backbone
    from facebone.cli.attack_inversion import check_device
    from facebone.data.lfw import scan_lfw
    from facebone.data.pairs import make_protocol
    from facebone.embeddings import embed_images

    check_device(args.device)
    for flag in ("images", "epochs", "steps", "targets"):
        value = getattr(args, flag)  # None: not given, the default applies
        if value is not None and value < 1:
            raise FaceBoneError(f"--{flag} must be at least 1, got {value}")
    if args.images < 2 or args.queries < 20:
        raise FaceBoneError("--inversion needs --images of at least 2 and --queries of at least 20")
    attacker = make_protocol(scan_lfw(args.data), seed=args.seed)["attacker"]
    attacker = list(dict.fromkeys(path for pair in attacker for path in (pair.image1, pair.image2)))
    paths = attacker[: args.images]
    cache = open_cache(args)
    backbone = create_backbone("sface")
    try:
        templates = embed_images(args.data, paths, [backbone], cache, progress=not args.json)[0]
        templates = templates["sface"]
        faces = aligned_faces(args.data, paths, 112, cache)
        n = min(args.targets, len(paths))
        log.info("timing decoder training: %d epochs over %d faces", args.epochs, len(paths))
        decoder = bench_decoder(
            faces, templates, len(attacker), args.epochs, args.device, args.seed
        )
        log.info("timing gradient inversion: %d steps on %d targets", args.steps, n)
        optimise = bench_optimise(faces, templates, n, args.steps, args.device)
        log.info("timing black-box search: %d queries on each of %d targets", args.queries, n)
        blackbox = bench_blackbox(faces, templates, backbone, n, args.queries, args.seed)
    finally:
        backbone.close()
    results = {
        "inversion": {"decoder": decoder, "optimise": optimise, "blackbox": blackbox},
        "device": args.device,
        "seed": args.seed,
        "machine": {**_machine(), "torch_threads": torch.get_num_threads()},
    }
    if args.device.startswith("cuda"):
        results["machine"]["gpu"] = torch.cuda.get_device_name(args.device)
    emit(results, args.json, _inversion_text(results, args.seed))
    return 0


def _inversion_text(results: dict, seed: int) -> str:
    decoder, optimise, blackbox = results["inversion"].values()
    return "\n".join(
        [
            f"model inversion on {results['machine'].get('gpu', results['device'])} "
            f"({results['machine']['cpus']} CPUs, {results['machine']['torch_threads']} torch "
            "threads)",
            f"decoder training, {decoder['image_size']} px: {decoder['faces_per_s']} faces/s "
            f"per epoch ({decoder['epochs_timed']} epochs over {decoder['faces']} faces); "
            f"{decoder['default_epochs']} epochs over seed {seed}'s {decoder['attacker_faces']} "
            f"attacker faces: {decoder['implied_minutes']} min",
            f"gradient inversion through the SFace copy, batch of {optimise['batch']}: "
            f"{optimise['steps_per_s']} steps/s; {optimise['default_steps']} steps: "
            f"{optimise['implied_seconds_per_batch']} s per batch",
            f"black-box score search (SFace cosine service, CPU), {blackbox['targets']} targets: "
            f"{blackbox['queries_per_s']} queries/s; {blackbox['default_queries_per_target']} "
            f"queries: {blackbox['implied_seconds_per_target']} s per target",
        ]
    )
