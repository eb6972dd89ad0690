// Recomputes the fee and total as the customer types or picks a method (the server computes
// them again on submit; without JavaScript the page works the same, and its "Show fee and
// total" button has the server show them).
(function () {
  "use strict";
  var amount = document.getElementById("amount");
  var fixed = document.querySelector("input[type=hidden][name=amount]");
  var feeOut = document.getElementById("fee");
  var totalOut = document.getElementById("total");
  var form = document.querySelector("form");
  if (!feeOut || !totalOut || !form) { return; }
  // The live total makes the server's "Show fee and total" needless: Enter confirms again.
  var review = document.getElementById("review");
  if (review) { review.remove(); }
  var exponent = parseInt((amount && amount.dataset.exponent) || "2", 10);
  var currency = (document.querySelector("label[for=amount]") || {}).textContent || "";
  currency = (currency.match(/\(([A-Z]{3})\)/) || [null, ""])[1];
  function minor(text) {
    var m = /^([0-9]+)(?:\.([0-9]*))?$/.exec((text || "").trim());
    if (!m) { return null; }
    var frac = m[2] || "";
    if (frac.length > exponent) { return null; }
    while (frac.length < exponent) { frac += "0"; }
    return BigInt(m[1] + frac);
  }
  // In the currency's own format for the page's language, as the server shows amounts (both
  // from CLDR); the exact decimal string is formatted, never a float.
  var money = null;
  try {
    money = currency ? new Intl.NumberFormat(document.documentElement.lang || "en", {
      style: "currency", currency: currency,
      minimumFractionDigits: exponent, maximumFractionDigits: exponent
    }) : null;
  } catch (e) { money = null; }
  function shown(value) {
    var s = value.toString().padStart(exponent + 1, "0");
    var major = exponent ? s.slice(0, -exponent) + "." + s.slice(-exponent) : s;
    if (money) { return money.format(major); }
    return currency ? major + " " + currency : major;
  }
  function update() {
    var picked = form.querySelector("input[name=method]:checked");
    var value = minor(amount ? amount.value : (fixed ? fixed.value : ""));
    if (!picked || value === null) { feeOut.textContent = "-"; totalOut.textContent = "-"; return; }
    var fee = BigInt(picked.dataset.fixed) + (value * BigInt(picked.dataset.bps) + 5000n) / 10000n;
    if (fee < BigInt(picked.dataset.min)) { fee = BigInt(picked.dataset.min); }
    if (picked.dataset.max !== "" && fee > BigInt(picked.dataset.max)) { fee = BigInt(picked.dataset.max); }
    feeOut.textContent = shown(fee);
    totalOut.textContent = shown(value + fee);
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  var sent = false;
  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); return; }
    sent = true;
  });
  update();
})();
