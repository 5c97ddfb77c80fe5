"""Write each finished progress bar's final text into an executed notebook's plain-text output.

A tqdm bar in JupyterLab is a widget. Code hosts do not run widgets and show the bar's
plain-text fallback instead, which was captured when the bar was created: "0/1000". The
widget's final state is saved in the notebook's metadata; this copies it into that
fallback, so a reader of the saved notebook sees "100% 1000/1000 [00:14, ...]".

Usage: python tools/freeze_progress_bars.py NOTEBOOK.ipynb [...]
"""
import html
import json
import sys

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def bar_text(state, model_id):
    """tqdm's text for an HBox(HTML, FloatProgress, HTML) widget, from its saved state."""
    box = state.get(model_id, {}).get("state", {})
    parts = [state.get(c.removeprefix("IPY_MODEL_"), {}) for c in box.get("children", [])]
    if [p.get("model_name") for p in parts] != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (p["state"] for p in parts)
    filled = int(10 * bar["value"] / bar["max"]) if bar.get("max") else 0
    text = f"{html.unescape(left['value'])}|{'█' * filled}{' ' * (10 - filled)}|{html.unescape(right['value'])}"
    return text.replace("\u2007", " ")


def freeze(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    changed = 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            text = view and bar_text(state, view["model_id"])
            if text:
                out["data"]["text/plain"] = [text]
                changed += 1
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{path}: {changed} progress bars frozen")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        freeze(p)
