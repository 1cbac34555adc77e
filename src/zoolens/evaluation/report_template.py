"""The report's one HTML page (Jinja2, autoescaped): inline CSS, images as data: URIs, no scripts, no links."""

PAGE_STYLE = """\
  body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0;
         color: #1d2630; background: #f4f6f8; line-height: 1.45; }
  main { max-width: 1160px; margin: 0 auto; padding: 24px 28px 48px; }
  header { background: #1f3b57; color: #fff; padding: 22px 28px; }
  header h1 { margin: 0 0 4px; font-size: 26px; }
  header p { margin: 0; opacity: .85; }
  section { background: #fff; border-radius: 8px; padding: 16px 22px 20px; margin: 18px 0;
            box-shadow: 0 1px 3px rgba(0,0,0,.08); }
  h2 { font-size: 19px; margin: 0 0 12px; color: #1f3b57; border-bottom: 1px solid #e3e8ee; padding-bottom: 6px; }
"""  # the look both zoolens pages share (the model report, the camera-trap results)

REPORT_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zoolens report: {{ title }}</title>
<style>
""" + PAGE_STYLE + """  h3 { font-size: 15px; margin: 14px 0 6px; }
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
  ol.checks { padding-left: 20px; margin: 6px 0 10px; }
  ol.checks li { margin-bottom: 6px; max-width: 900px; }
  tr.total td { font-weight: 600; }
  .shot img.single { width: 100%; height: 190px; object-fit: contain; background: #f6f8fa; border-radius: 3px; }
  .warn { color: #8a5300; font-size: 13px; }
  code { background: #f0f4f8; padding: 1px 4px; border-radius: 3px; font-size: 13px; }
  ul.verdict { margin: 4px 0 14px; padding-left: 20px; max-width: 900px; font-size: 15px; line-height: 1.5; }
  ul.verdict li { margin-bottom: 4px; }
  details summary { cursor: pointer; font-weight: 600; margin: 10px 0 6px; color: #1f3b57; }
  .suspect { color: #8a5300; font-size: 12px; font-weight: 600; }
  .colour-key { display: flex; align-items: center; gap: 8px; font-size: 12px; color: #5b6b7a; margin: 4px 0 10px; }
  .colour-key .ramp { width: 160px; height: 10px; border-radius: 2px; background: linear-gradient(to right,
    #00007f, #0000ff, #007fff, #00ffff, #7fff7f, #ffff00, #ff7f00, #ff0000, #7f0000); }
</style>
</head>
<body>
<header>
  <h1>{{ title }}</h1>
  <p>{{ classes|length }} classes: {{ classes|join(", ") }} &middot; backbone {{ card.backbone }} &middot; report written {{ written }}</p>
</header>
<main>
<nav>
  <a href="#summary">In short</a><a href="#model-card">Model card</a><a href="#dataset">Dataset</a>
  <a href="#labels">Labels</a>
  <a href="#training">Training</a><a href="#metrics">Metrics</a><a href="#confusion">Confusion</a>
  <a href="#confused-pairs">Confused pairs</a><a href="#unknown-photos">Photos it does not know</a>
  <a href="#mistakes">Mistakes</a><a href="#correct">Correct</a>
</nav>

<section id="summary">
  <h2>In short</h2>
  <ul class="verdict">{% for sentence in verdict %}<li>{{ sentence }}</li>{% endfor %}</ul>
  <div class="cards">
    {% for label, value in headline %}
    <div class="card"><div class="value">{{ value }}</div><div class="label">{{ label }}</div></div>
    {% endfor %}
  </div>
  <p class="note">Evaluated on {{ evaluated_on }}. <b>Accuracy</b>: the share of photos whose likeliest class is
    their label. <b>Macro F1</b>: precision and recall (see Metrics) taken together, averaged over the classes so
    that a small class counts as much as a large one. <b>Log loss</b>: how little probability it gave the right
    class, on average (0 is perfect; lower is better). <b>Answered with a class</b>: the rest were “not sure” or
    “none of these”.</p>
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

<section id="labels">
  <h2>Labels worth checking</h2>
  <p class="note">{{ labels.corrections }} {{ labels.note }}</p>
  {% if labels.checked %}
  <div class="cards">
    <div class="card"><div class="value">{{ labels.mislabelled }}</div>
      <div class="label">photos probably filed under the wrong class</div></div>
    <div class="card"><div class="value">{{ labels.leak_count }}</div>
      <div class="label">near-copies across train / val / test (they inflate the test accuracy)</div></div>
    <div class="card"><div class="value">{{ labels.outliers }}</div>
      <div class="label">photos unlike the rest of their class</div></div>
  </div>
  {% if labels.shots %}
  <h3>Most likely mislabelled</h3>
  <div class="gallery">
    {% for shot in labels.shots %}
    <div class="shot">
      <img class="single" alt="likely mislabelled photo" src="{{ shot.photo }}">
      <div class="caption">filed as {{ shot.given }}, looks like <b>{{ shot.suggested }}</b>
        ({{ shot.score }} sure it is not {{ shot.given }})</div>
      <div class="file">{{ shot.file }}</div>
    </div>
    {% endfor %}
  </div>
  {% endif %}
  {% if labels.leaks %}
  <h3>Copies across the split</h3>
  <table>{% for a, part_a, b, part_b in labels.leaks %}
    <tr><td>{{ a }} ({{ part_a }})</td><td>{{ b }} ({{ part_b }})</td></tr>{% endfor %}</table>
  {% endif %}
  {% endif %}
</section>

<section id="training">
  <h2>Training</h2>
  <h3>Training curves</h3>
  {% if curves %}<img class="figure" alt="training curves" src="{{ curves }}">
  {% else %}<p class="note">No training_curves.png in the model folder.</p>{% endif %}
  <details>
    <summary>Configuration (every setting of the run)</summary>
    <table>{% for label, value in training %}<tr><th>{{ label }}</th><td>{{ value }}</td></tr>{% endfor %}</table>
  </details>
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
  <p class="note"><b>Precision</b>: of the photos it called this class, the share that were. <b>Recall</b>: of the
    photos of this class, the share it found. <b>F1</b>: the two together (their harmonic mean). <b>Photos</b>: test
    photos of the class. The averages: <b>macro</b> counts each class alike, <b>weighted</b> by its photos.</p>
</section>

<section id="confusion">
  <h2>Confusion matrix</h2>
  <p class="note">Each row is the photos of one true class; each column, what the model answered. The diagonal is
    right; every other cell is a mistake (right: the same as shares of each row).</p>
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

<section id="unknown-photos">
  <h2>Photos it does not know</h2>
  {% if open_set.fitted %}
  <p>People will show this model photos of none of its classes: a person, a cup, an empty garden, an animal
    it never saw. Rather than always naming one of its classes, it answers “none of these” (with the reason) or
    “not sure” when a photo fails one of three checks:</p>
  <ol class="checks">
    {% for check in open_set.checks %}<li><b>{{ check.name }}</b> {{ check.text }}</li>{% endfor %}
  </ol>
  <p class="note">The thresholds were fitted on {{ open_set.fitted_on }}, so that together the checks turn away
    {{ open_set.share }} of them (mode <code>on</code>, the default); <code>--open-set strict</code> turns away
    {{ open_set.strict_share }}, <code>--open-set off</code> none.</p>
  <table>
    <tr><th>mode</th><th class="num">distance above</th><th class="num">animal probability below</th>
        <th class="num">known kinds below</th><th class="num">confidence below</th><th class="num">none of these</th><th class="num">not sure</th></tr>
    {% for row in open_set.thresholds %}
    <tr><td>{{ row.mode }}</td><td class="num">{{ row.distance }}</td><td class="num">{{ row.animal }}</td>
        <td class="num">{{ row.known }}</td><td class="num">{{ row.confidence }}</td><td class="num">{{ row.none }}</td><td class="num">{{ row.not_sure }}</td></tr>
    {% endfor %}
  </table>
  <p class="note">The last two columns: the share of those validation photos each mode turns away.</p>
  {% for note in open_set.notes %}<p class="warn">{{ note }}</p>{% endfor %}
  {% else %}
  <p>This model was made before zoolens had the “none of these” check: it names one of its classes for every
    photo, whatever it shows. Train it again to get the check.</p>
  {% endif %}

  <h3>Its own test photos</h3>
  {% if open_set.answers %}
  <div class="cards">
    {% for label, value in open_set.answers %}
    <div class="card"><div class="value">{{ value }}</div><div class="label">{{ label }}</div></div>
    {% endfor %}
  </div>
  <p class="note">Mode {{ open_set.answers_mode }}, on {{ evaluated_on }}. Turned away: {{ open_set.reasons }}.
    The accuracy in the summary counts every photo, answered or not.</p>
  {% else %}<p class="note">Not recorded for these photos.</p>{% endif %}

  <h3>Photos of none of its classes</h3>
  {% if open_set.unknown and open_set.unknown.problem %}<p class="warn">{{ open_set.unknown.problem }}</p>
  {% elif open_set.unknown %}
  {% set unknown = open_set.unknown %}
  <div class="cards">
    <div class="card"><div class="value">{{ unknown.accepted }}</div><div class="label">unknown photos accepted as a class</div></div>
    <div class="card"><div class="value">{{ unknown.auroc }}</div><div class="label">AUROC, known vs unknown</div></div>
    <div class="card"><div class="value">{{ unknown.known.answered }}</div><div class="label">own test photos answered</div></div>
  </div>
  <table>
    <tr><th>unknown photos</th><th class="num">photos</th><th class="num">accepted as a class</th><th>accepted as</th>
        <th class="num">AUROC</th><th>turned away because</th></tr>
    {% for row in unknown.rows %}
    <tr{% if row.total %} class="total"{% endif %}><td>{{ row.folder }}</td><td class="num">{{ row.photos }}</td>
        <td class="num">{{ row.accepted }}</td><td>{{ row.as }}</td><td class="num">{{ row.auroc }}</td><td>{{ row.reasons }}</td></tr>
    {% endfor %}
  </table>
  <p class="note">Measured by <code>zoolens evaluate --unknown</code> (mode {{ unknown.mode }}, {{ unknown.written }};
    {{ unknown.file }}) against {{ unknown.known.photos }} of its own test photos, of which it answered
    {{ unknown.known.answered }} (accuracy on those {{ unknown.known.accuracy_on_answered }}, on all
    {{ unknown.known.accuracy_all }}). AUROC: how well one score, each check's distance past its threshold,
    tells the two apart at any threshold (1: always, 0.5: no better than chance).</p>
  {% if unknown.stale %}<p class="warn">These were measured with other thresholds than the model has now:
    run <code>zoolens evaluate --unknown</code> again.</p>{% endif %}
  {% for gallery in unknown.galleries %}
  <h3>{{ gallery.title }}</h3>
  {% if gallery.shots %}
  <div class="gallery">
    {% for shot in gallery.shots %}
    <div class="shot">
      <img class="single" alt="open-set photo" src="{{ shot.photo }}">
      <div class="caption">{% if shot.true %}truly {{ shot.true }}: {% endif %}<span class="wrong">{{ shot.answer }}</span></div>
      <div class="file">{{ shot.file }}</div>
    </div>
    {% endfor %}
  </div>
  {% elif gallery.grid %}<img class="figure" alt="open-set grid" src="{{ gallery.grid }}">
  {% else %}<p class="note">{{ gallery.empty }}</p>{% endif %}
  {% endfor %}
  {% else %}
  <p class="note">Not measured yet. Run <code>zoolens evaluate MODEL DATA --unknown FOLDER</code> with photos of
    people, objects or other animals (any layout, repeat <code>--unknown</code> for each set): how many it still
    names as one of its classes then shows here.</p>
  {% endif %}
</section>

{% for gallery in galleries %}
<section id="{{ gallery.id }}">
  <h2>{{ gallery.title }}</h2>
  <p class="note">{{ gallery.note }}</p>
  {% if gallery.shots %}
  <div class="colour-key"><span>Grad-CAM:</span><span class="ramp"></span><span>little attention</span>
    <span class="to">&rarr;</span><span>where the network looked most</span></div>
  <div class="gallery">
    {% for shot in gallery.shots %}
    <div class="shot">
      <div class="pair"><img alt="photo" src="{{ shot.photo }}"><img alt="Grad-CAM" src="{{ shot.overlay }}"></div>
      <div class="caption">{% if shot.correct %}<span class="right">{{ shot.predicted }}</span>
        {% else %}<span class="wrong">{{ shot.predicted }}</span>, labelled {{ shot.true }}{% endif %}
        &middot; {{ shot.confidence }}</div>
      {% if shot.suspect %}<div class="suspect">{{ shot.suspect }}</div>{% endif %}
      <div class="file" title="{{ shot.path }}">{{ shot.file }}</div>
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
