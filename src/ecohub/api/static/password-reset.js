// The reset link carries its token in the fragment (#token=…): browsers never send a fragment to the server, so the
// token stays out of access logs and Referer headers. Move it into the form and drop it from the address bar.
(function () {
  var match = /[#&]token=([^&]+)/.exec(window.location.hash);
  var field = document.getElementById("token");
  if (match && field) {
    field.value = decodeURIComponent(match[1]);
    history.replaceState(null, "", window.location.pathname);
  }
})();
