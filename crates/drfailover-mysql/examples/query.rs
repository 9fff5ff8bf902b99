//! Run one statement with a millisecond deadline and print the rows.
//!
//!     MYSQL_PWD=secret cargo run -p drfailover-mysql --example query -- 127.0.0.1:3306 app "SELECT 1"

use std::time::Duration;

use drfailover_mysql::{ConnectOptions, Connection, Deadline};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, user, rest @ ..] = args.as_slice() else {
        return Err("usage: query HOST:PORT USER [SQL]   (password in MYSQL_PWD)".into());
    };
    let sql = rest
        .first()
        .map_or("SELECT @@version, @@read_only", String::as_str);
    let (host, port) = addr.rsplit_once(':').ok_or("HOST:PORT expected")?;
    let opts = ConnectOptions::tcp(host, port.parse()?)
        .user(user.as_str())
        .password(std::env::var("MYSQL_PWD").unwrap_or_default());
    let mut conn = Connection::connect_within(&opts, Deadline::after(Duration::from_millis(500)))?;
    let result = conn.query_within(sql, Deadline::after(Duration::from_secs(5)))?;
    let names: Vec<&str> = (0..result.num_fields())
        .filter_map(|i| result.field_name(i))
        .collect();
    println!("{}", names.join("\t"));
    for row in 0..result.num_rows() {
        let cells: Vec<&str> = (0..result.num_fields())
            .map(|col| result.text(row, col).unwrap_or("NULL"))
            .collect();
        println!("{}", cells.join("\t"));
    }
    println!(
        "({} rows, server {})",
        result.num_rows(),
        conn.server_version()
    );
    Ok(())
}
