// Optional enhancement: every page reads without this script. Hovering a
// UTC time shows it in the reader's local time zone.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) { el.title = d.toLocaleString(); }
  });
});
