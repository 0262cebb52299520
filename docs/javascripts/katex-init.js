// Typeset the maths that pymdownx.arithmatex (generic mode) leaves in the page:
// <span class="arithmatex">\( ... \)</span> inline, <div class="arithmatex">\[ ... \]</div> display.
// KaTeX itself is vendored in ./katex/, so nothing is fetched at view time.
(function () {
  "use strict";
  var delimiters = [["\\(", "\\)", false], ["\\[", "\\]", true]];

  function typeset(element) {
    var tex = element.textContent.trim();
    for (var i = 0; i < delimiters.length; i++) {
      var open = delimiters[i][0], close = delimiters[i][1];
      if (tex.slice(0, open.length) === open && tex.slice(-close.length) === close) {
        katex.render(tex.slice(open.length, tex.length - close.length), element, {
          displayMode: delimiters[i][2],
          throwOnError: false  // a formula KaTeX cannot read shows in red, the page still loads
        });
        return;
      }
    }
  }

  function typesetAll() {
    document.querySelectorAll(".arithmatex").forEach(typeset);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", typesetAll);
  } else {
    typesetAll();
  }
})();
