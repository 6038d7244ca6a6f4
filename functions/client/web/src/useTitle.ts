import { useEffect } from "react";

/** Sets the browser tab's title for the page shown. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · tickit` : "tickit";
  }, [title]);
}
