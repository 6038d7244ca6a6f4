// The client function's settings (GET /config.json), read once and shared.
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { api, type ClientSettings } from "./api";

const SettingsContext = createContext<ClientSettings | null>(null);

export function SettingsProvider({ children }: { children: ReactNode }) {
  const [settings, setSettings] = useState<ClientSettings | null>(null);
  useEffect(() => {
    // Without the settings the app still works: the pay form falls back to test methods.
    api
      .settings()
      .then(setSettings)
      .catch(() => setSettings({ stripePublishableKey: "" }));
  }, []);
  return <SettingsContext.Provider value={settings}>{children}</SettingsContext.Provider>;
}

/** null until /config.json has answered. */
export function useSettings(): ClientSettings | null {
  return useContext(SettingsContext);
}
