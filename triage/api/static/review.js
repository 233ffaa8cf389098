// Review desk shortcuts: 1/2/3 confirm a suggestion, n opens the next ticket (not while typing).
document.addEventListener("keydown", (e) => {
  const t = e.target;
  if (e.ctrlKey || e.metaKey || e.altKey || (t && /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  const el = /^[123]$/.test(e.key) ? document.getElementById("s" + e.key)
    : e.key === "n" ? document.getElementById("next") : null;
  if (el) { e.preventDefault(); el.click(); }
});
