// The demo page: a worker (classifier.js) loads the artifact served at /artifact/ with the bundled
// browser runtime and classifies the text in the box. `?threads=N` asks for N threads (on a
// cross-origin isolated page only; the default is the cores there, else one).

const $ = (id) => document.getElementById(id);
const status = $("status");
const asked = new URLSearchParams(location.search).get("threads");
const worker = new Worker("/classifier.js", { type: "module" });
let labels = [];

worker.onmessage = ({ data }) => {
  if (data.error) return fail(data.error);
  if (data.ready) return ready(data.ready);
  const r = data.result;
  $("label").textContent = r.label;
  $("latency").textContent = `(${data.ms.toFixed(1)} ms${
    r.truncated ? ", text cut to the compiled length" : ""
  })`;
  $("probabilities").replaceChildren(...r.probabilities.map((p, i) => row(labels[i], p)));
  $("result").dataset.probabilities = JSON.stringify(r.probabilities);
  $("result").hidden = false;
  $("run").disabled = false;
};
worker.onerror = (e) => fail(e.message);
worker.postMessage({ load: { url: "/artifact/", threads: asked === null ? undefined : Number(asked) } });

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  $("run").disabled = true;
  worker.postMessage({ text: $("text").value });
});

/** The model is loaded: say on how many threads, and why one when the page is not isolated. */
function ready({ threads, relaxedSimd, isolated, labels: names }) {
  labels = names;
  const simd = relaxedSimd ? "relaxed SIMD" : "SIMD";
  status.textContent = isolated
    ? `Ready: ${threads} thread${threads === 1 ? "" : "s"}, ${simd}, cross-origin isolated.`
    : `Ready: ${simd}; runs on one thread: the page is not cross-origin isolated.`;
  status.dataset.threads = String(threads);
  status.dataset.relaxedSimd = String(relaxedSimd);
  $("run").disabled = false;
}

/** One table row: the label, its probability and a bar. */
function row(label, p) {
  const tr = document.createElement("tr");
  for (const text of [label, p.toFixed(4), ""]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  const bar = document.createElement("span");
  bar.style.width = `${(p * 100).toFixed(1)}%`;
  tr.lastChild.className = "bar";
  tr.lastChild.append(bar);
  return tr;
}

/** Shows an error in the status line. */
function fail(message) {
  status.textContent = `Error: ${message}`;
  status.className = "error";
  $("run").disabled = true;
}
