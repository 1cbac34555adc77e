"""The report's one HTML page (Jinja2, autoescaped): inline CSS, images as data: URIs, no scripts, no links."""

REPORT_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zoolens report: {{ title }}</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0;
         color: #1d2630; background: #f4f6f8; line-height: 1.45; }
  main { max-width: 1160px; margin: 0 auto; padding: 24px 28px 48px; }
  header { background: #1f3b57; color: #fff; padding: 22px 28px; }
  header h1 { margin: 0 0 4px; font-size: 26px; }
  header p { margin: 0; opacity: .85; }
  section { background: #fff; border-radius: 8px; padding: 16px 22px 20px; margin: 18px 0;
            box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  h2 { font-size: 19px; margin: 0 0 12px; color: #1f3b57; border-bottom: 1px solid #e3e8ee; padding-bottom: 6px; }
  h3 { font-size: 15px; margin: 14px 0 6px; }
  table { border-collapse: collapse; font-size: 14px; }
  th, td { padding: 4px 12px 4px 0; text-align: left; vertical-align: top; border-bottom: 1px solid #eef1f4; }
  th { color: #4a5866; font-weight: 600; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; padding-left: 12px; }
  .cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 8px; }
  .card { background: #f0f4f8; border-radius: 6px; padding: 10px 16px; min-width: 120px; }
  .card .value { font-size: 24px; font-weight: 700; color: #1f3b57; }
  .card .label { font-size: 12px; color: #5b6b7a; text-transform: uppercase; letter-spacing: .04em; }
  .row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
  .row > div { flex: 1 1 320px; }
  img.figure { max-width: 100%; height: auto; }
  pre { background: #f6f8fa; padding: 10px 12px; border-radius: 6px; font-size: 13px; overflow-x: auto; }
  .gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 14px; }
  .shot { border: 1px solid #e3e8ee; border-radius: 6px; padding: 8px; font-size: 13px; }
  .shot .pair { display: flex; gap: 4px; }
  .shot .pair img { width: 50%; height: auto; border-radius: 3px; }
  .shot .caption { margin-top: 6px; }
  .shot .file { color: #6a7886; font-size: 11px; word-break: break-all; }
  .wrong { color: #b3261e; font-weight: 600; }
  .right { color: #1e7b34; font-weight: 600; }
  .note { color: #5b6b7a; font-size: 13px; }
  nav a { color: #1f3b57; margin-right: 14px; font-size: 14px; }
</style>
</head>
<body>
<header>
  <h1>{{ title }}</h1>
  <p>{{ classes|length }} classes: {{ classes|join(", ") }} &middot; backbone {{ card.backbone }} &middot; report written {{ written }}</p>
</header>
<main>
<nav>
  <a href="#summary">Summary</a><a href="#model-card">Model card</a><a href="#dataset">Dataset</a>
  <a href="#training">Training</a><a href="#metrics">Metrics</a><a href="#confusion">Confusion</a>
  <a href="#confused-pairs">Confused pairs</a><a href="#mistakes">Mistakes</a><a href="#correct">Correct</a>
</nav>

<section id="summary">
  <h2>Summary</h2>
  <div class="cards">
    {% for label, value in headline %}
    <div class="card"><div class="value">{{ value }}</div><div class="label">{{ label }}</div></div>
    {% endfor %}
  </div>
  <p class="note">Evaluated on {{ evaluated_on }}.</p>
</section>

<section id="model-card">
  <h2>Model card</h2>
  <table>
    {% for label, value in card.facts %}
    <tr><th>{{ label }}</th><td>{{ value }}</td></tr>
    {% endfor %}
  </table>
</section>

<section id="dataset">
  <h2>Dataset</h2>
  <p class="note">{{ dataset.note }}</p>
  <div class="row">
    <div>
      <table>
        <tr><th>class</th>{% for part in dataset.parts %}<th class="num">{{ part }}</th>{% endfor %}<th class="num">share</th></tr>
        {% for row in dataset.rows %}
        <tr><td>{{ row.name }}</td>{% for n in row.counts %}<td class="num">{{ n }}</td>{% endfor %}<td class="num">{{ row.share }}</td></tr>
        {% endfor %}
      </table>
      {% if dataset.facts %}
      <h3>Images</h3>
      <table>
        {% for label, value in dataset.facts %}<tr><th>{{ label }}</th><td>{{ value }}</td></tr>{% endfor %}
      </table>
      {% endif %}
    </div>
    <div><img class="figure" alt="photos per class" src="{{ dataset.balance_chart }}"></div>
    {% if dataset.size_chart %}<div><img class="figure" alt="image sizes" src="{{ dataset.size_chart }}"></div>{% endif %}
  </div>
  {% if dataset.problems %}
  <h3>Unusable or skipped files ({{ dataset.problems|length }})</h3>
  <table>{% for path, reason in dataset.problems[:30] %}<tr><td>{{ path }}</td><td>{{ reason }}</td></tr>{% endfor %}</table>
  {% endif %}
</section>

<section id="training">
  <h2>Training</h2>
  <h3>Training curves</h3>
  {% if curves %}<img class="figure" alt="training curves" src="{{ curves }}">
  {% else %}<p class="note">No training_curves.png in the model folder.</p>{% endif %}
  <h3>Configuration</h3>
  <table>{% for label, value in training %}<tr><th>{{ label }}</th><td>{{ value }}</td></tr>{% endfor %}</table>
</section>

<section id="metrics">
  <h2>Metrics</h2>
  <table>
    <tr><th>class</th><th class="num">precision</th><th class="num">recall</th><th class="num">F1</th><th class="num">photos</th></tr>
    {% for row in per_class %}
    <tr><td>{{ row.name }}</td><td class="num">{{ row.precision }}</td><td class="num">{{ row.recall }}</td>
        <td class="num">{{ row.f1 }}</td><td class="num">{{ row.support }}</td></tr>
    {% endfor %}
    {% for kind, precision, recall, f1 in overall %}
    <tr><th>{{ kind }} average</th><td class="num">{{ precision }}</td><td class="num">{{ recall }}</td>
        <td class="num">{{ f1 }}</td><td></td></tr>
    {% endfor %}
  </table>
  {% if report_text %}<h3>Classification report</h3><pre>{{ report_text }}</pre>{% endif %}
</section>

<section id="confusion">
  <h2>Confusion matrix</h2>
  <div class="row">
    <div><img class="figure" alt="confusion matrix (photos)" src="{{ confusion.counts }}"></div>
    <div><img class="figure" alt="confusion matrix (share of each true class)" src="{{ confusion.normalized }}"></div>
  </div>
</section>

<section id="confused-pairs">
  <h2>Most confused classes</h2>
  {% if confused_pairs %}
  <table>
    <tr><th>true class</th><th>taken for</th><th class="num">photos</th><th class="num">share of the true class</th></tr>
    {% for pair in confused_pairs %}
    <tr><td>{{ pair.true }}</td><td>{{ pair.predicted }}</td><td class="num">{{ pair.count }}</td><td class="num">{{ pair.share }}</td></tr>
    {% endfor %}
  </table>
  {% else %}<p class="note">No class was mistaken for another.</p>{% endif %}
</section>

{% for gallery in galleries %}
<section id="{{ gallery.id }}">
  <h2>{{ gallery.title }}</h2>
  <p class="note">{{ gallery.note }}</p>
  {% if gallery.shots %}
  <div class="gallery">
    {% for shot in gallery.shots %}
    <div class="shot">
      <div class="pair"><img alt="photo" src="{{ shot.photo }}"><img alt="Grad-CAM" src="{{ shot.overlay }}"></div>
      <div class="caption">{% if shot.correct %}<span class="right">{{ shot.predicted }}</span>
        {% else %}<span class="wrong">{{ shot.predicted }}</span>, truly {{ shot.true }}{% endif %}
        &middot; {{ shot.confidence }}</div>
      <div class="file">{{ shot.file }}</div>
    </div>
    {% endfor %}
  </div>
  {% else %}<p class="note">{{ gallery.empty }}</p>{% endif %}
</section>
{% endfor %}

<p class="note">Written by zoolens {{ version }}. Everything on this page is inside this one file.</p>
</main>
</body>
</html>
"""
