"""Methods boilerplate, citations, software versions and the model card's warning, for the reports.

The boilerplate follows fMRIPrep's: a paragraph users may paste into a paper (with the settings
of the run filled in) and the references it cites.
"""

from __future__ import annotations

import html
import logging
import re
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Distributions whose versions every report lists (first installed name of each tuple wins).
SOFTWARE = (("bids-fcd", ("bids-fcd", "bids_fcd")), ("torch", ("torch",)), ("monai", ("monai", "monai-weekly")),
            ("antspyx", ("antspyx",)), ("deepbet", ("deepbet",)), ("nilearn", ("nilearn",)),
            ("nibabel", ("nibabel",)), ("numpy", ("numpy",)), ("matplotlib", ("matplotlib",)))

#: key → (short citation, full reference).
REFERENCES: dict[str, tuple[str, str]] = {
    "li2026": ("Li et al. 2026", "Li, Pan, Zhang et al. Pseudo-healthy image synthesis via location-guided diffusion "
               "models for focal cortical dysplasia lesion localization. Scientific Reports 16, 8101 (2026)."),
    "ho2020": ("Ho et al. 2020", "Ho J, Jain A, Abbeel P. Denoising diffusion probabilistic models. Advances in "
               "Neural Information Processing Systems 33 (2020)."),
    "song2021": ("Song et al. 2021", "Song J, Meng C, Ermon S. Denoising diffusion implicit models. International "
                 "Conference on Learning Representations (2021)."),
    "lugmayr2022": ("Lugmayr et al. 2022", "Lugmayr A, Danelljan M, Romero A, Yu F, Timofte R, Van Gool L. RePaint: "
                    "inpainting using denoising diffusion probabilistic models. Proceedings of the IEEE/CVF "
                    "Conference on Computer Vision and Pattern Recognition (2022)."),
    "dhariwal2021": ("Dhariwal & Nichol 2021", "Dhariwal P, Nichol A. Diffusion models beat GANs on image "
                     "synthesis. Advances in Neural Information Processing Systems 34 (2021)."),
    "wolleb2022": ("Wolleb et al. 2022", "Wolleb J, Bieder F, Sandkühler R, Cattin PC. Diffusion models for medical "
                   "anomaly detection. MICCAI 2022, LNCS 13438, 35-45 (2022)."),
    "avants2008": ("Avants et al. 2008", "Avants BB, Epstein CL, Grossman M, Gee JC. Symmetric diffeomorphic image "
                   "registration with cross-correlation: evaluating automated labeling of elderly and "
                   "neurodegenerative brain. Medical Image Analysis 12(1), 26-41 (2008)."),
    "tustison2010": ("Tustison et al. 2010", "Tustison NJ, Avants BB, Cook PA, et al. N4ITK: improved N3 bias "
                     "correction. IEEE Transactions on Medical Imaging 29(6), 1310-1320 (2010)."),
    "fisch2024": ("Fisch et al. 2024", "Fisch L, Zumdick S, Barkhau C, et al. deepbet: fast brain extraction of "
                  "T1-weighted MRI using convolutional neural networks. Computers in Biology and Medicine 179, "
                  "108845 (2024)."),
    "cardoso2022": ("Cardoso et al. 2022", "Cardoso MJ, Li W, Brown R, et al. MONAI: an open-source framework for "
                    "deep learning in healthcare. arXiv:2211.02701 (2022)."),
    "pinaya2023": ("Pinaya et al. 2023", "Pinaya WHL, Graham MS, Kerfoot E, et al. Generative AI for medical "
                   "imaging: extending the MONAI framework. arXiv:2307.15208 (2023)."),
    "abraham2014": ("Abraham et al. 2014", "Abraham A, Pedregosa F, Eickenberg M, et al. Machine learning for "
                    "neuroimaging with scikit-learn. Frontiers in Neuroinformatics 8, 14 (2014)."),
    "fonov2009": ("Fonov et al. 2009", "Fonov VS, Evans AC, McKinstry RC, Almli CR, Collins DL. Unbiased nonlinear "
                  "average age-appropriate brain templates from birth to adulthood. NeuroImage 47, S102 (2009)."),
    "fonov2011": ("Fonov et al. 2011", "Fonov V, Evans AC, Botteron K, et al. Unbiased average age-appropriate "
                  "atlases for pediatric studies. NeuroImage 54(1), 313-327 (2011)."),
}


def software_versions() -> dict[str, str]:
    """Installed versions of the packages in :data:`SOFTWARE` (``not installed`` where absent)."""
    out: dict[str, str] = {}
    for label, dists in SOFTWARE:
        out[label] = "not installed"
        for dist in dists:
            try:
                out[label] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def setting(settings: dict[str, object], *names: str, default: object = None) -> object:
    """The first of ``names`` in ``settings``, matching keys case-insensitively on their last
    dotted part with ``_``/``-`` ignored (``sampler.noise_level`` matches ``NoiseLevel``)."""

    def norm(key: str) -> str:
        return re.sub(r"[_\-\s]", "", key.rsplit(".", 1)[-1]).lower()

    index = {norm(k): v for k, v in settings.items()}
    for n in names:
        if norm(n) in index and index[norm(n)] not in (None, ""):
            return index[norm(n)]
    return default


def boilerplate(settings: dict[str, object], model_name: str, reference: dict[str, object] | None,
                z_threshold: float, min_cluster_mm3: float, versions: dict[str, str]) -> tuple[str, list[str]]:
    """The methods paragraph (plain text) and the keys of :data:`REFERENCES` it cites, in order."""
    cited: list[str] = []

    def c(*keys: str) -> str:
        for k in keys:
            if k not in cited:
                cited.append(k)
        return "(" + "; ".join(REFERENCES[k][0] for k in keys) + ")"

    reg = str(setting(settings, "registration", default="SyN")).lower()
    reg_txt = ("an affine registration" if reg.startswith("affine") else
               "a symmetric diffeomorphic (SyN) registration " + c("avants2008"))
    enc = str(setting(settings, "encoding", default="stochastic"))
    level = setting(settings, "noise_level", "L", default="L")
    steps = setting(settings, "steps", "K", default=level)
    draws = setting(settings, "draws", "D", default=1)
    scale = setting(settings, "guidance_scale", "s", default="s")
    hm = setting(settings, "histogram_matching", default=True)
    spacing = setting(settings, "spacing_mm", "grid_spacing_mm", default=None)
    encode_txt = (f"encoded by deterministic inverse DDIM to noise level L = {level} {c('song2021')}"
                  if enc.startswith("det") else
                  f"noised forward to level L = {level} ({draws} draw(s), averaged)")
    look = str(setting(settings, "second_look", default="off"))
    look_txt = "" if look == "off" else (
        "Regions where the smoothed residual or the FLAIR's left-right asymmetry exceeded a robust within-brain "
        f"z of {setting(settings, 'look_z', default=3.0)} were then synthesised again by inpainting "
        f"{c('lugmayr2022')} from noise level {setting(settings, 'look_noise_level', default=700)} in "
        f"{setting(settings, 'look_steps', default=7)} guided steps "
        f"({setting(settings, 'look_draws', default=2)} draw(s), averaged), with the T1w inside them "
        + {"mirror": "replaced by the mirror hemisphere's", "blur": "blurred", "clean": "kept as it was"}.get(
            str(setting(settings, "look_t1", default="mirror")), "hidden") + ". ")
    cond = str(setting(settings, "t1_condition", default="native"))
    cond_txt = {"symmetric": ", conditioned on the T1w averaged with its left-right mirror image inside the brain",
                "mirror": ", conditioned on the left-right mirror image of the T1w inside the brain"}.get(cond, "")
    asym = float(setting(settings, "asymmetry_weight", default=0.0) or 0.0)  # type: ignore[arg-type]
    asym_txt = (f"; the FLAIR's left-right asymmetry (FLAIR minus its mirror image) was z-scored the same way and "
                f"added to the combined z with weight {asym:g}") if asym > 0 and reference else ""
    ref_txt = (f"z-scored voxelwise against a normative reference of {reference.get('n', 'n/a')} control "
               f"participants ({reference.get('dataset', 'dataset not recorded')}"
               + (f", age {reference['age_range']}" if reference.get("age_range") else "") + ")"
               if reference else "z-scored within the brain mask, as in the original method (no normative reference)")
    text = (
        f"Results included in this report were generated with bids-fcd {versions.get('bids-fcd', '')}, "
        f"an implementation of the pseudo-healthy diffusion method of Li et al. {c('li2026')}. "
        "The T1-weighted (T1w) and FLAIR images were corrected for intensity non-uniformity with N4 "
        f"{c('tustison2010')} as implemented in ANTs {c('avants2008')} (antspyx {versions.get('antspyx', '')}). "
        "The FLAIR was registered to the T1w with a rigid transform, the brain was extracted from the T1w with "
        f"deepbet {c('fisch2024')}, and the T1w was normalised to the MNI152NLin2009aSym template "
        f"{c('fonov2009', 'fonov2011')} with {reg_txt}; both images were resampled to the model's "
        + (f"{spacing} mm " if spacing else "") + "grid and their intensities scaled inside the brain mask. "
        "A pseudo-healthy FLAIR was synthesised slice by slice with a T1w-conditioned denoising diffusion model "
        f"{c('ho2020')} built with MONAI {c('cardoso2022', 'pinaya2023')} (MONAI {versions.get('monai', '')}, "
        f"PyTorch {versions.get('torch', '')}; model '{model_name}'){cond_txt}: the FLAIR was {encode_txt} and decoded with "
        f"DDIM {c('song2021')} in {steps} steps, guided towards the healthy class by a noise-aware lobe classifier "
        f"(classifier guidance {c('dhariwal2021', 'wolleb2022')}, scale s = {scale}). "
        + look_txt
        + ("The pseudo-healthy image was histogram-matched to the FLAIR inside the brain mask. " if hm not in
           (False, "False", "false", 0) else "")
        + "The residual (FLAIR minus pseudo-healthy FLAIR) was smoothed and "
        f"{ref_txt}{asym_txt}. Clusters of z > {z_threshold:g} of at least {min_cluster_mm3:g} mm\u00b3 were reported, "
        "ranked by peak z, with hemisphere and lobe from template coordinates. "
        f"Figures were made with nilearn {versions.get('nilearn', '')} {c('abraham2014')}."
    )
    return text, cited


def references_html(keys: list[str]) -> str:
    """An ordered HTML list of the full references of ``keys``."""
    return "<ol class='refs'>" + "".join(f"<li>{html.escape(REFERENCES[k][1])}</li>" for k in keys) + "</ol>"


# ---------------------------------------------------------------- the model card


def is_synthetic_model(model_dir: Path, model_name: str) -> bool:
    """True when the model was trained on synthetic (phantom) data.

    Read from the model card (its text says "trained on synthetic data") or the model name
    (``phantom-…``); a model without a card is taken at its name.
    """
    if model_name.lower().startswith("phantom") or Path(model_dir).name.lower().startswith("phantom"):
        return True
    card = Path(model_dir) / "MODEL_CARD.md"
    try:
        return "trained on synthetic data" in card.read_text(encoding="utf-8").lower()
    except OSError:
        return False


def _sections(text: str) -> dict[str, str]:
    """Markdown ``##`` sections by lower-case title ("" for the text before the first)."""
    out: dict[str, list[str]] = {"": []}
    cur = ""
    for line in text.splitlines():
        m = re.match(r"^#{1,3}\s+(.*)", line)
        if m and line.startswith("##"):
            cur = m.group(1).strip().lower()
            out[cur] = []
        elif not line.startswith("# "):
            out[cur].append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def _inline_md(text: str) -> str:
    """Escape, then render **bold**, `code` and [links](…) (link text only: the targets are relative
    to the model directory, not to the report)."""
    t = html.escape(text, quote=False)
    t = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", t)


def markdown_block(text: str) -> str:
    """A small Markdown subset as HTML: paragraphs, ``-`` lists, pipe tables; code fences dropped."""
    out: list[str] = []
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        if all(ln.lstrip().startswith("|") for ln in lines):
            rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines
                    if not re.match(r"^\s*\|[\s:|-]+\|\s*$", ln)]
            body = "".join("<tr>" + "".join(f"<td>{_inline_md(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
            head = "<tr>" + "".join(f"<th>{_inline_md(c)}</th>" for c in rows[0]) + "</tr>" if rows else ""
            out.append(f"<table class='card'>{head}{body}</table>")
        elif all(ln.lstrip().startswith(("- ", "* ")) or ln.startswith("  ") for ln in lines):
            items: list[str] = []
            for ln in lines:
                if ln.lstrip().startswith(("- ", "* ")):
                    items.append(ln.lstrip()[2:])
                elif items:
                    items[-1] += " " + ln.strip()
            out.append("<ul>" + "".join(f"<li>{_inline_md(i)}</li>" for i in items) + "</ul>")
        else:
            out.append(f"<p>{_inline_md(' '.join(ln.strip() for ln in lines))}</p>")
    return "\n".join(out)


def synthetic_banner_html(model_dir: Path, model_name: str) -> str:
    """The warning banner for a model trained on synthetic data, from its MODEL_CARD.md at run time:
    the card's warning, its training data and its validation figures; "not for clinical use"."""
    card = Path(model_dir) / "MODEL_CARD.md"
    parts = ["<div class='banner' id='synthetic-model'>",
             f"<p class='big'>Model <code>{html.escape(model_name)}</code> was trained on <b>synthetic "
             "(phantom) data</b>, not on patients. Results are not validated on real MRI. "
             "<b>Not for clinical use.</b></p>"]
    try:
        secs = _sections(card.read_text(encoding="utf-8"))
    except OSError as exc:
        log.warning("model card %s not readable (%s); banner without it", card, exc)
        parts.append(f"<p>No model card found at {html.escape(str(card))}.</p></div>")
        return "\n".join(parts)
    intro = secs.get("", "")
    if intro:
        parts.append(markdown_block(intro))
    parts.append(banner_summary_html(model_dir))
    picks = [(title, body) for title, body in secs.items() if title and re.search(
        r"training data|evaluation|validation|reference and calibration|limits", title)]
    for title, body in picks:
        parts.append(f"<details><summary>Model card: {html.escape(title)}</summary>{markdown_block(body)}"
                     "</details>")
    parts.append(f"<p class='small'>From {html.escape(str(card))}.</p></div>")
    return "\n".join(parts)


def validation_figures(model_dir: Path) -> list[str]:
    """Sentences of the model card's training/evaluation sections that carry figures (numbers with
    a metric word), for the banner's summary line."""
    try:
        secs = _sections((Path(model_dir) / "MODEL_CARD.md").read_text(encoding="utf-8"))
    except OSError:
        return []
    found: list[str] = []
    for title, body in secs.items():
        if not re.search(r"training data|evaluation|validation|calibration", title):
            continue
        body = re.sub(r"```.*?```", "", body, flags=re.S)
        for sent in re.split(r"(?<=\.)\s+(?=[A-Z(])", " ".join(body.split())):
            if re.search(r"\d", sent) and re.search(
                    r"accuracy|sensitivity|dice|R@|recall|false[- ]positive|MSE|cross-entropy|AUC|detected", sent,
                    re.I):
                found.append(sent.strip())
    return found


def banner_summary_html(model_dir: Path) -> str:
    """The validation figures from the card as a short list (empty string when the card has none)."""
    figs = validation_figures(model_dir)
    if not figs:
        return ""
    return ("<p>Validation figures from the model card:</p><ul>"
            + "".join(f"<li>{_inline_md(s)}</li>" for s in figs[:6]) + "</ul>")


def format_value(v: Any) -> str:
    """Table cell text: floats to 3 significant decimals, None as n/a."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)
