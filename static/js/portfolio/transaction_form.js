// The transaction form: fills the unit price with the close of the stored candle at the chosen
// asset and time (GET price-at), and says where it came from. A price the person typed is theirs:
// it is never overwritten, and clearing the field lets the form fill it again. Without this script
// the form works as before, with the price typed by hand.
(function () {
  var me = document.getElementById("transaction-form-js");
  var symbol = document.getElementById("id_symbol");
  var when = document.getElementById("id_executed_at");
  var price = document.getElementById("id_unit_price");
  var note = document.getElementById("unit-price-source");
  if (!me || !symbol || !when || !price || !note) return;

  var SYMBOL = /^[A-Za-z0-9]{2,20}$/;
  var filled = null;  // the value this script put in the field, while it is still there
  var asked = 0;  // the newest request: answers to older ones are ignored
  var timer = null;

  // On the edit form, or after a refused submission, the price shown is the person's. While the
  // field has focus the person may be typing: a late answer written under the cursor would be
  // joined to their digits, so it waits until they leave the field.
  function ours() {
    return document.activeElement !== price && (price.value === "" || price.value === filled);
  }

  function say(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  // The note describes the price: listed among the field's descriptions for screen readers.
  var described = (price.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  price.setAttribute("aria-describedby", described.concat(note.id).join(" "));

  function lookUp() {
    var s = symbol.value.trim();
    if (!ours() || !SYMBOL.test(s) || !when.value) return;
    var id = ++asked;
    var url = me.dataset.priceUrl + "?" + new URLSearchParams({ symbol: s, time: when.value });
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; });
      })
      .then(function (answer) {
        if (id !== asked || !ours()) return;  // a newer choice, or the person typed a price meanwhile
        if (answer.ok) {
          price.value = filled = answer.body.price;
          say(answer.body.source);
        } else {
          if (filled !== null) price.value = "";  // filled for an earlier choice: wrong for this one
          filled = null;
          say(answer.status === 404 ? answer.body.error + " Enter the price yourself." : "");
        }
      })
      .catch(function () { /* offline or signed out: the price is typed by hand, as without script */ });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(lookUp, 300);  // once typing pauses, not on every key
  }

  symbol.addEventListener("input", soon);
  symbol.addEventListener("change", lookUp);
  when.addEventListener("input", soon);
  when.addEventListener("change", lookUp);
  price.addEventListener("input", function () {
    if (price.value !== filled) {
      filled = null;
      say("");
    }
  });
  price.addEventListener("blur", function () {
    if (price.value === "") lookUp();  // left empty: the answer held back while it had focus
  });

  lookUp();  // a symbol given in the address (?symbol=) and the default time: fill at once
})();
