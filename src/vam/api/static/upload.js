/* vam upload page: tus-js-client against /files/, progress, resume after a reload (same file). */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("vam-config").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var upload = null;
  var state = { assetId: null, status: null, resumedFrom: null, error: null, done: false };
  window.vamUpload = state;
  if (cfg.needs_key) $("key-row").hidden = false;

  function setState(s) { document.body.dataset.state = s; }
  function message(text) { $("message").textContent = text; }
  function showError(text) {
    state.error = text;
    $("error").textContent = text;
    $("error").hidden = false;
    setState("error");
  }
  function headers() {
    var key = $("api-key").value;
    return key ? { "X-Api-Key": key } : {};
  }

  function poll() {
    fetch("/assets/" + state.assetId, { headers: headers() }).then(function (r) {
      if (r.status === 404) return { status: "waiting for processing" };
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (a) {
      state.status = a.status;
      $("asset-status").textContent = a.status;
      if (a.status === "ready") {
        setState("ready");
        return fetch("/assets/" + state.assetId + "/playback", { headers: headers() })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (p) { if (p) { $("watch").href = p.watch; $("watch").hidden = false; } });
      }
      if (a.status === "rejected" || a.status === "failed") {
        showError("asset " + state.assetId + " " + a.status + ": " + (a.reason || ""));
        return;
      }
      setTimeout(poll, 1000);
    }).catch(function (e) { message("status check failed: " + e.message); setTimeout(poll, 3000); });
  }

  $("form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = $("file").files[0];
    if (!file) { showError("choose a file first"); return; }
    $("error").hidden = true;
    var meta = { filename: file.name, filetype: file.type || "application/octet-stream" };
    if ($("title").value) meta.title = $("title").value;
    upload = new tus.Upload(file, {
      endpoint: cfg.endpoint,
      chunkSize: cfg.chunk_size,
      retryDelays: [0, 1000, 3000],
      metadata: meta,
      headers: headers(),
      removeFingerprintOnSuccess: true,
      onProgress: function (sent, total) {
        var pct = total ? (sent / total) * 100 : 0;
        $("progress").value = pct;
        $("percent").textContent = pct.toFixed(1) + "%";
        setState("uploading");
      },
      onAfterResponse: function (_req, res) {
        var id = res.getHeader("Vam-Asset-Id");
        if (id) state.assetId = id;
      },
      onError: function (err) {
        $("pause").disabled = true;
        showError("upload failed: " + err.message + " (reload the page and choose the file again to resume)");
      },
      onSuccess: function () {
        state.done = true;
        $("pause").disabled = true;
        message("uploaded " + file.name);
        if (state.assetId) {
          $("asset").hidden = false;
          $("asset-id").textContent = state.assetId;
          setState("processing");
          poll();
        } else {
          setState("uploaded");
        }
      },
    });
    upload.findPreviousUploads().then(function (previous) {
      if (previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        state.resumedFrom = previous[0].uploadUrl;
        message("resuming the upload started " + previous[0].creationTime);
      } else {
        message("uploading " + file.name);
      }
      $("pause").disabled = false;
      upload.start();
    });
  });
  $("pause").addEventListener("click", function () {
    if (upload) { upload.abort(); message("paused: press Upload to go on"); setState("paused"); }
  });
})();
