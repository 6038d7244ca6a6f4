// The page layout and the app's routes.
import { Route, Routes } from "react-router";
import { Header } from "./components/Header";
import { RequireUser } from "./components/RequireUser";
import { AuthPage } from "./pages/AuthPage";
import { NewTicketPage } from "./pages/NewTicketPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { OrderPage } from "./pages/OrderPage";
import { OrdersPage } from "./pages/OrdersPage";
import { TicketPage } from "./pages/TicketPage";
import { TicketsPage } from "./pages/TicketsPage";

export function App() {
  return (
    <>
      <Header />
      <main className="page">
        <Routes>
          <Route path="/" element={<TicketsPage />} />
          <Route path="/auth/signup" element={<AuthPage mode="signup" />} />
          <Route path="/auth/signin" element={<AuthPage mode="signin" />} />
          <Route path="/tickets/new" element={<RequireUser what="sell tickets"><NewTicketPage /></RequireUser>} />
          <Route path="/tickets/:id" element={<TicketPage />} />
          <Route path="/orders" element={<RequireUser what="see your orders"><OrdersPage /></RequireUser>} />
          <Route path="/orders/:id" element={<RequireUser what="see this order"><OrderPage /></RequireUser>} />
          <Route path="*" element={<NotFoundPage />} />
        </Routes>
      </main>
    </>
  );
}
