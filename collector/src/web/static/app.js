// Sverka dashboard: the little JavaScript there is. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons next to secrets and install commands. Over plain HTTP there is no
  // navigator.clipboard: the text is selected and copied the old way, and if even
  // that is refused, it stays selected and the button says to press Ctrl+C.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) {
        return;
      }
      const done = () => { button.textContent = button.dataset.copied; };
      const selectAndCopy = () => {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        let copied = false;
        try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
        button.textContent = copied ? button.dataset.copied : button.dataset.manual;
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.textContent.trim()).then(done, selectAndCopy);
      } else {
        selectAndCopy();
      }
    });
  }
  // The inventory filters as one types (the form still searches on the server).
  const search = document.getElementById("inventory-search");
  const table = document.querySelector("table[id^='inventory-']");
  if (search && table) {
    search.addEventListener("input", () => {
      const needle = search.value.trim().toLowerCase();
      for (const row of table.tBodies[0].rows) {
        row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
      }
    });
  }
});
