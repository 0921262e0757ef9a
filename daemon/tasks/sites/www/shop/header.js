// The shop's header on every page: its name, the search link and the cart with its count.
function shopHeader(state) {
  const count = (state.cart || []).reduce((n, item) => n + item.qty, 0);
  return `<header><span class="brand">Corner Shop</span><a href="index.html">Products</a>
    <a href="cart.html">Cart (${count})</a></header>`;
}
